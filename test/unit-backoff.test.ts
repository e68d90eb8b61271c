// src/dispatcher/backoff.ts on its own. retryDelayMs takes its randomness as an argument, so every
// case here is deterministic: exponential growth in the attempt, the cap, the jitter's bounds
// (half to one and a half times the capped delay), and odd attempts.
import t from 'tap'
import { retryDelayMs } from '../src/dispatcher/backoff.ts'

const base = 1000
const max = 60_000
const middle = () => 0.5

/** A fixed, spread-out sequence in [0, 1): the same "random" numbers on every run. */
function sequence(): () => number {
  let i = 0
  return () => (i++ * 0.618033988749895) % 1
}

t.test('without jitter (random 0.5) it doubles each attempt from the base, then stays at the cap', async (t) => {
  const delays = Array.from({ length: 10 }, (_, i) => retryDelayMs(i + 1, base, max, middle))
  t.same(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000])
  t.equal(retryDelayMs(1, 2000, 120_000, middle), 2000, 'the defaults (RHPOOL_RETRY_BASE_MS 2 s): the first retry after 2 s')
  t.equal(retryDelayMs(7, 2000, 120_000, middle), 120_000, '… the cap (RHPOOL_RETRY_MAX_MS 120 s) from the 7th')
  t.equal(retryDelayMs(3, 500, 500, middle), 500, 'base = cap: constant')
})

t.test('the jitter stays between half and one and a half times the capped delay', async (t) => {
  t.equal(
    retryDelayMs(3, base, max, () => 0),
    2000,
    'random 0: half'
  )
  t.equal(
    retryDelayMs(3, base, max, () => 0.999999),
    6000,
    'random just below 1: one and a half'
  )
  t.equal(
    retryDelayMs(20, base, max, () => 0),
    30_000,
    'at the cap: half the cap at the least'
  )
  t.equal(
    retryDelayMs(20, base, max, () => 0.999999),
    90_000,
    'and one and a half times the cap at the most'
  )
  const random = sequence()
  let outside = 0
  for (let attempt = 1; attempt <= 40; attempt++) {
    const capped = Math.min(max, base * 2 ** (attempt - 1))
    for (let i = 0; i < 50; i++) {
      const delay = retryDelayMs(attempt, base, max, random)
      if (!Number.isInteger(delay) || delay < capped * 0.5 || delay > capped * 1.5) outside++
    }
  }
  t.equal(outside, 0, '2000 delays over 40 attempts: whole milliseconds, all within [0.5, 1.5] × the capped delay')
})

t.test('for the same draw, a later attempt never waits less', async (t) => {
  for (const draw of [0, 0.13, 0.5, 0.87, 0.999]) {
    let previous = 0
    for (let attempt = 1; attempt <= 30; attempt++) {
      const delay = retryDelayMs(attempt, base, max, () => draw)
      if (delay < previous) t.fail(`draw ${draw}: attempt ${attempt} waits ${delay} < ${previous}`)
      previous = delay
    }
  }
  t.pass('non-decreasing in the attempt')
})

t.test('the jitter spreads retries: different draws, different delays', async (t) => {
  const random = sequence()
  const delays = new Set(Array.from({ length: 20 }, () => retryDelayMs(5, base, max, random)))
  t.ok(delays.size >= 15, `20 retries of attempt 5 wait ${delays.size} different times`)
})

t.test('odd attempts: below 1 is the first; a huge one is the cap, finite', async (t) => {
  for (const attempt of [0, -1, -1000]) t.equal(retryDelayMs(attempt, base, max, middle), 1000, `attempt ${attempt}`)
  for (const attempt of [1024, 1e6, Number.MAX_SAFE_INTEGER]) t.equal(retryDelayMs(attempt, base, max, middle), max, `attempt ${attempt}`)
})

t.test('without a random function it uses Math.random, within the same bounds', async (t) => {
  const original = Math.random
  let calls = 0
  Math.random = () => {
    calls++
    return 0.25
  }
  try {
    t.equal(retryDelayMs(2, base, max), 1500, 'Math.random() 0.25 → 0.75 × 2000')
    t.equal(calls, 1)
  } finally {
    Math.random = original
  }
  for (let i = 0; i < 200; i++) {
    const delay = retryDelayMs(4, base, max)
    if (delay < 4000 || delay > 12_000) t.fail(`attempt 4: ${delay} outside [4000, 12000]`)
  }
  t.pass('200 real draws within bounds')
})
