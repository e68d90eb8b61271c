// StepBatcher without a database: the first step goes at once, steps made while a
// batch is written go together as the next one, and a failing batch is retried
// item by item so one bad step fails alone.
import t from 'tap'
import { StepBatcher } from '../src/db/step-batcher.ts'

/** A flush that records each batch and answers when released. */
function recordingFlush() {
  const batches: number[][] = []
  const releases: Array<() => void> = []
  const flush = async (items: number[]): Promise<string[]> => {
    batches.push(items)
    await new Promise<void>((resolve) => releases.push(resolve))
    if (items.includes(13)) throw new Error('13 is refused')
    return items.map((i) => `answer ${i}`)
  }
  const releaseNext = async () => {
    while (releases.length === 0) await new Promise((resolve) => setImmediate(resolve))
    releases.shift()!()
  }
  return { batches, flush, releaseNext }
}

t.test('the first step is sent alone at once; those made meanwhile go together next', async (t) => {
  const { batches, flush, releaseNext } = recordingFlush()
  const batcher = new StepBatcher(flush)
  const first = batcher.call(1)
  t.same(batches, [[1]], 'sent without waiting for company')
  const more = [2, 3, 4].map((i) => batcher.call(i))
  await releaseNext()
  t.equal(await first, 'answer 1')
  await releaseNext()
  t.same(await Promise.all(more), ['answer 2', 'answer 3', 'answer 4'], 'each gets its own answer')
  t.same(batches, [[1], [2, 3, 4]])
})

t.test('no batch is larger than maxBatch', async (t) => {
  const { batches, flush, releaseNext } = recordingFlush()
  const batcher = new StepBatcher(flush, { maxBatch: 2 })
  const calls = [1, 2, 3, 4, 5].map((i) => batcher.call(i))
  for (let i = 0; i < 3; i++) await releaseNext()
  t.same(
    await Promise.all(calls),
    [1, 2, 3, 4, 5].map((i) => `answer ${i}`)
  )
  t.same(batches, [[1], [2, 3], [4, 5]])
})

t.test('with maxInFlight 2, a second batch goes while the first is written; the rest wait for one to end', async (t) => {
  const { batches, flush, releaseNext } = recordingFlush()
  const batcher = new StepBatcher(flush, { maxInFlight: 2 })
  const calls = [1, 2, 3, 4, 5].map((i) => batcher.call(i))
  t.same(batches, [[1], [2]], 'two batches under way, the others waiting')
  await releaseNext()
  await releaseNext()
  await releaseNext()
  t.same(
    await Promise.all(calls),
    [1, 2, 3, 4, 5].map((i) => `answer ${i}`)
  )
  t.same(batches, [[1], [2], [3, 4, 5]])
})

t.test('a batch that fails is retried item by item: the bad step fails alone', async (t) => {
  const { batches, flush, releaseNext } = recordingFlush()
  const batcher = new StepBatcher(flush)
  const first = batcher.call(1)
  const rest = [12, 13, 14].map((i) =>
    batcher.call(i).then(
      (answer) => ({ answer }),
      (error: Error) => ({ error: error.message })
    )
  )
  // [1], then [12, 13, 14] fails, then 12, 13 and 14 alone.
  for (let i = 0; i < 5; i++) await releaseNext()
  t.equal(await first, 'answer 1')
  t.same(await Promise.all(rest), [{ answer: 'answer 12' }, { error: '13 is refused' }, { answer: 'answer 14' }])
  t.same(batches, [[1], [12, 13, 14], [12], [13], [14]])
})

t.test('a flush that answers too few items fails those items, not silently', async (t) => {
  const batcher = new StepBatcher<number, string>(async (items) => (items.length > 1 ? ['only one'] : [`alone ${items[0]}`]))
  const answers = await Promise.all([batcher.call(1), batcher.call(2), batcher.call(3)])
  t.same(answers, ['alone 1', 'alone 2', 'alone 3'], 'the short batch was retried item by item')
})

t.test('maxBatch and maxInFlight must be whole numbers >= 1', async (t) => {
  t.throws(() => new StepBatcher(async () => [], { maxBatch: 0 }), /maxBatch must be a whole number >= 1, got 0/)
  t.throws(() => new StepBatcher(async () => [], { maxInFlight: 1.5 }), /maxInFlight must be a whole number >= 1, got 1.5/)
})
