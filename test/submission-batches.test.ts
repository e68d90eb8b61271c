// The submission steps, batched (220-submission-batches.sql, src/db/step-batcher.ts):
// steps of several jobs go in one transaction, each item answers as its single-job
// step would, a recovered claim in a batch is refused alone, and bad input is named.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { claim, insertJob, setAccounts } from './helpers/jobs.ts'
import { SubmissionSteps, type Claim } from '../src/db/rhpool.ts'

// The transaction that last wrote each job's run (its xmin): which steps went
// together, read from the rows themselves (the server's transaction counter is
// shared with every other test running at the same time).
const writers = async (sql: Awaited<ReturnType<typeof freshDatabase>>['sql'], claims: Claim[]): Promise<string[]> => {
  const rows = await sql`select job_id::text, xmin::text as writer from rhpool.runs where job_id in ${sql(claims.map((c) => c.job_id))}`
  const byJob = new Map(rows.map((r) => [r.job_id as string, r.writer as string]))
  return claims.map((c) => byJob.get(c.job_id)!)
}

t.test('steps made together are written in one transaction, each with its own answer; a stale claim is refused alone', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 4 }])
  const ids = [await insertJob(sql, 'upscaler_jobs'), await insertJob(sql, 'veste_ai_jobs'), await insertJob(sql, 'pose_changer_jobs')]
  const claims = (await claim(sql, 3)) as Claim[]
  t.equal(claims.length, 3)
  const stale: Claim = { ...claims[1]!, claim_token: String(BigInt(claims[1]!.claim_token) + 1000n) }
  // One batch at a time, so the batches are known: the first step alone, the other three together.
  const steps = new SubmissionSteps(sql as never, 30, { maxInFlight: 1 })

  // Made in one tick: the first goes alone at once, the others together as the next batch.
  const begun = await Promise.all([steps.begin(claims[0]!), steps.begin(stale), steps.begin(claims[2]!), steps.begin(claims[1]!)])
  const [first, second, third] = await writers(sql, claims)
  t.same(
    begun,
    [{ attempts: 1, status: 'submitting' }, null, { attempts: 1, status: 'submitting' }, { attempts: 1, status: 'submitting' }],
    'each claim its own answer; the wrong token refused'
  )
  t.ok(
    second === third && first !== second,
    'two batches (1 + 3 steps): the first step alone, the other two jobs written by one transaction'
  )
  const [refused] = await sql`select count(*)::int as n from rhpool.maintenance_log where action = 'stale_claim_refused'`
  t.equal(refused!.n, 1, 'the stale step is logged, as the single-job step logs it')

  const recorded = await Promise.all([
    steps.record(claims[0]!, '1900000000000000001'),
    steps.record(claims[1]!, '1900000000000000002'),
    steps.record(stale, '1900000000000000009'),
    steps.record(claims[2]!, '1900000000000000003'),
  ])
  t.same(recorded, ['running', 'running', 'running', 'running'], "the stale step answers the job's status, as the single-job step does")
  const jobs = await sql`select id, status, task_id from rhpool.jobs where id in ${sql(ids)} order by task_id`
  t.same(
    jobs.map((j) => [j.id, j.status, j.task_id]),
    [
      [ids[0], 'running', '1900000000000000001'],
      [ids[1], 'running', '1900000000000000002'],
      [ids[2], 'running', '1900000000000000003'],
    ],
    'every job running with its own task id; the stale step wrote nothing'
  )
})

t.test('a bad item fails alone; the others of its batch are recorded', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  await insertJob(sql, 'upscaler_jobs')
  await insertJob(sql, 'upscaler_jobs')
  await insertJob(sql, 'upscaler_jobs')
  const claims = (await claim(sql, 3)) as Claim[]
  const steps = new SubmissionSteps(sql as never, 30)
  await Promise.all(claims.map((c) => steps.begin(c)))
  const settled = await Promise.allSettled([
    steps.record(claims[0]!, '1900000000000000011'),
    steps.record(claims[1]!, 'not a task id!'),
    steps.record(claims[2]!, '1900000000000000013'),
  ])
  t.same(settled[0], { status: 'fulfilled', value: 'running' })
  t.match(settled[1], {
    status: 'rejected',
    reason: { message: /record_submission: task_id must be 1-64 letters, digits, - or _, got 'not a task id!'/ },
  })
  t.same(settled[2], { status: 'fulfilled', value: 'running' }, 'the others of the batch it was in are recorded')
  const [stuck] = await sql`select status from rhpool.runs where job_id = ${claims[1]!.job_id}`
  t.equal(stuck!.status, 'submitting', 'the bad item changed nothing')
})

t.test('arrays of different lengths are refused with a message naming them', async (t) => {
  const { sql } = await freshDatabase(t)
  await t.rejects(
    sql`select * from rhpool.begin_submissions(array['upscaler_jobs'], array[]::uuid[], array[1]::bigint[], 30)`,
    /begin_submissions: job_tables, job_ids and claim_tokens must have one entry per job \(got 1, 0 and 1\)/
  )
  await t.rejects(
    sql`select * from rhpool.record_submissions(array['upscaler_jobs'], array[gen_random_uuid()], array[1]::bigint[], array[]::text[])`,
    /record_submissions: .* must have one entry per job \(got 1, 1, 1 and 0\)/
  )
})
