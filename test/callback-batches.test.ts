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

t.test('callbacks only held: one statement, and the outcome and record each would get alone', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 4 }])
  for (let i = 0; i < 4; i++) await insertJob(sql, 'upscaler_jobs')
  const [a, b, c, d] = (await claim(sql, 4)) as Claim[]
  await runClaimed(sql, a!, '1900000000000000300')
  await runClaimed(sql, b!, '1900000000000000301')
  await runClaimed(sql, c!, '1900000000000000302')
  // d is sent, RunningHub's answer not recorded yet (no task id); c is already finished.
  await sql`select rhpool.begin_submission(${d!.job_table}, ${d!.job_id}, ${d!.claim_token}, 30)`
  await new CallbackTaker(sql as never).take(
    'apply_callback',
    { jobTable: 'upscaler_jobs', jobId: c!.job_id, attempt: 1, taskId: '1900000000000000302' },
    success('https://out/c.png'),
    '{}'
  )
  await sql`delete from rhpool.webhook_deliveries`
  let notified: (payload: string) => void = () => {}
  const woken = new Promise<string>((resolve) => (notified = resolve))
  await sql.listen('rhpool_confirm', (payload) => notified(payload))

  const nowhere = '00000000-0000-4000-8000-000000000000'
  const cases = [
    {
      fn: 'receive_claim',
      job: a!.job_id,
      task: '1900000000000000300',
      outcome: 'unconfirmed',
      detail: 'waiting for RunningHub to confirm with query',
    },
    {
      fn: 'receive_claim',
      job: b!.job_id,
      task: '1900000000000000399',
      outcome: 'task_mismatch',
      detail: 'job runs task 1900000000000000301, callback is for task 1900000000000000399',
    },
    {
      fn: 'receive_claim',
      job: d!.job_id,
      task: '1900000000000000300',
      outcome: 'task_mismatch',
      detail: `task 1900000000000000300 belongs to upscaler_jobs/${a!.job_id}`,
    },
    { fn: 'receive_claim', job: c!.job_id, task: '1900000000000000302', outcome: 'duplicate', detail: 'job already completed' },
    { fn: 'receive_claim', job: b!.job_id, task: null, outcome: 'unconfirmed', detail: 'waiting for RunningHub to confirm with query' },
    {
      fn: 'hold_callback',
      job: b!.job_id,
      task: '1900000000000000399',
      outcome: 'unconfirmed',
      detail: 'waiting for RunningHub to confirm with query',
    },
    { fn: 'hold_callback', job: c!.job_id, task: '1900000000000000302', outcome: 'duplicate', detail: 'job already completed' },
    {
      fn: 'receive_claim',
      job: nowhere,
      task: '1900000000000000398',
      outcome: 'unconfirmed',
      detail: 'waiting for RunningHub to confirm with query',
    },
    {
      fn: 'receive_claim',
      job: d!.job_id,
      task: '1900000000000000303',
      outcome: 'unconfirmed',
      detail: 'waiting for RunningHub to confirm with query',
    },
  ]
  const answers = await sql`
    select ord, value, handed_delivery from rhpool.take_callbacks(
      ${cases.map((k) => k.fn)}::text[], ${cases.map(() => 'upscaler_jobs')}::text[], ${cases.map((k) => k.job)}::uuid[],
      ${cases.map(() => 1)}::integer[], ${cases.map((k) => k.task)}::text[],
      ${cases.map((k, i) => success(`https://out/${i}.png`)) as never}::jsonb[], ${cases.map((_, i) => `{"n":${i}}`)}::text[])
    order by ord`
  t.same(
    answers.map((r) => [r.ord, r.value, r.handed_delivery]),
    cases.map((k, i) => [i + 1, k.outcome, null]),
    'each callback answered its own outcome, by its place in the batch'
  )
  const rows = await sql`
    select job_id::text, attempt, task_id, event, outcome, http_status, detail, body, callback, resolved_at
    from rhpool.webhook_deliveries order by (body::jsonb ->> 'n')::int`
  t.same(
    rows.map((r) => ({ ...r })),
    cases.map((k, i) => ({
      job_id: k.job,
      attempt: 1,
      task_id: k.task,
      event: 'TASK_END',
      outcome: k.outcome,
      http_status: 200,
      detail: k.detail,
      body: `{"n":${i}}`,
      callback: success(`https://out/${i}.png`),
      resolved_at: null,
    })),
    'one delivery recorded per callback, with its body, its callback and why'
  )
  t.equal(await woken, '', 'the dispatchers are woken to confirm what was held')
  const jobs = await sql`select id::text, status from upscaler_jobs order by id`
  t.same(
    Object.fromEntries(jobs.map((j) => [j.id, j.status])),
    { [a!.job_id]: 'running', [b!.job_id]: 'running', [c!.job_id]: 'completed', [d!.job_id]: 'submitting' },
    'holding changes no job'
  )
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
    sql`select * from rhpool.hold_claims(array['upscaler_jobs'], array[gen_random_uuid()], array[1], array['1'], array['{}'::jsonb], array['{}'], array[true, false])`,
    /hold_claims: every array must have one entry per callback \(job_tables 1, job_ids 1, attempts 1, task_ids 1, callbacks 1, bodies 1, refuse_other_tasks 2\)/
  )
  await t.rejects(
    sql`select * from rhpool.confirm_callbacks(array[1]::bigint[], array[]::jsonb[], 1)`,
    /confirm_callbacks: delivery_ids and callbacks must have one entry per delivery \(got 1 and 0\)/
  )
})
