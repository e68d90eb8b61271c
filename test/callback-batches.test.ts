// Callbacks in batches (330-callback-batches.sql, CallbackTaker): callbacks that
// arrive together are written in one transaction, each answered its own outcome;
// a duplicate in the same batch is seen as one; bad input is named.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { claim, insertJob, runClaimed, setAccounts, type Claim } from './helpers/jobs.ts'
import { CallbackTaker } from '../src/db/rhpool.ts'

const success = (url: string) => ({ status: 'SUCCESS', outputs: [{ url, outputType: 'png' }] })

t.test('callbacks taken together: one transaction, each its own outcome, a duplicate seen as one', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  for (let i = 0; i < 3; i++) await insertJob(sql, 'upscaler_jobs')
  const claims = (await claim(sql, 3)) as Claim[]
  for (const [i, c] of claims.entries()) await runClaimed(sql, c, `190000000000000010${i}`)
  // One batch at a time, so the batches are known: the first callback alone, the other three together.
  const taker = new CallbackTaker(sql as never, undefined, { maxInFlight: 1 })
  const at = (c: Claim, i: number) => ({ jobTable: c.job_table, jobId: c.job_id, attempt: 1, taskId: `190000000000000010${i}` })

  const outcomes = await Promise.all([
    taker.take('apply_callback', at(claims[0]!, 0), success('https://out/0.png'), '{}'),
    taker.take('apply_callback', at(claims[1]!, 1), success('https://out/1.png'), '{}'),
    taker.take('apply_callback', at(claims[1]!, 1), success('https://out/1.png'), '{}'),
    taker.take('apply_callback', at(claims[2]!, 2), success('https://out/2.png'), '{}'),
  ])
  t.same(
    outcomes.map((o) => o.handed),
    [null, null, null, null],
    'nothing handed over when no terms are given'
  )
  t.same(
    outcomes.map((o) => o.outcome),
    ['applied', 'applied', 'duplicate', 'applied'],
    'the second delivery of one task, in the same batch, is a duplicate'
  )
  // Which callbacks went together, from the transaction that last wrote each job row (its
  // xmin): the server's transaction counter is shared with every other test running meanwhile.
  const writers = await sql`select id::text, xmin::text as writer from upscaler_jobs`
  const writer = new Map(writers.map((w) => [w.id as string, w.writer as string]))
  const [first, second, third] = claims.map((c) => writer.get(c.job_id))
  t.ok(
    second === third && first !== second,
    'two batches (1 + 3 callbacks): the first alone, the other two jobs completed by one transaction'
  )
  const jobs = await sql`select status, output_url from upscaler_jobs order by output_url`
  t.same(
    jobs.map((j) => [j.status, j.output_url]),
    [0, 1, 2].map((i) => ['completed', `https://out/${i}.png`])
  )
  const [events] = await sql`select count(*)::int as n from rhpool.job_events where status = 'completed'`
  t.equal(events!.n, 3, 'one terminal event per job')
})

t.test('one bad callback in a batch fails alone', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 2 }])
  for (let i = 0; i < 2; i++) await insertJob(sql, 'upscaler_jobs')
  const claims = (await claim(sql, 2)) as Claim[]
  for (const [i, c] of claims.entries()) await runClaimed(sql, c, `190000000000000020${i}`)
  const taker = new CallbackTaker(sql as never)
  const first = taker.take(
    'apply_callback',
    { jobTable: 'upscaler_jobs', jobId: claims[0]!.job_id, attempt: 1, taskId: '1900000000000000200' },
    success('https://a.png'),
    '{}'
  )
  const settled = await Promise.allSettled([
    taker.take(
      'apply_callback',
      { jobTable: 'upscaler_jobs', jobId: claims[1]!.job_id, attempt: 1, taskId: '1900000000000000201' },
      { status: 'WEIRD' },
      '{}'
    ),
    taker.take(
      'apply_callback',
      { jobTable: 'upscaler_jobs', jobId: claims[1]!.job_id, attempt: 1, taskId: '1900000000000000201' },
      success('https://b.png'),
      '{}'
    ),
  ])
  t.equal((await first).outcome, 'applied')
  t.match(settled[0], { status: 'rejected', reason: { message: /callback status must be SUCCESS, FAILED or CANCEL/ } })
  t.match(settled[1], { status: 'fulfilled', value: { outcome: 'applied' } }, 'the good one of the same batch is applied')
})

t.test('arrays of different lengths and an unknown function are refused by name', async (t) => {
  const { sql } = await freshDatabase(t)
  await t.rejects(
    sql`select * from rhpool.take_callbacks(array['apply_callback'], array['upscaler_jobs'], array[]::uuid[], array[1], array['1'], array['{}'::jsonb], array['{}'])`,
    /take_callbacks: every array must have one entry per callback \(functions 1, job_tables 1, job_ids 0,/
  )
  await t.rejects(
    sql`select * from rhpool.take_callbacks(array['drop_everything'], array['upscaler_jobs'], array[gen_random_uuid()], array[1], array['1'], array['{}'::jsonb], array['{}'])`,
    /take_callbacks: 'drop_everything' is not a callback function/
  )
  await t.rejects(
    sql`select * from rhpool.confirm_callbacks(array[1]::bigint[], array[]::jsonb[], 1)`,
    /confirm_callbacks: delivery_ids and callbacks must have one entry per delivery \(got 1 and 0\)/
  )
})
