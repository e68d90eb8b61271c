// Fenced claims: every step after a claim names the claim's token. A worker
// whose claim was recovered (its lease ran out: it hung, it was paused) and
// whose job was claimed again, perhaps on another account, can neither
// submit, fail, requeue nor release that job; its renewal fails and it stops.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { claim, insertJob, markUpload, runClaimed, setAccounts } from './helpers/jobs.ts'
import { spawnRhpool, startSystem, tasksPerJob, testKeys } from './helpers/system.ts'
import { loadConfig } from '../src/config/index.ts'
import { createLogger } from '../src/log.ts'
import { startService } from '../src/service.ts'
import { fingerprint } from '../simulator/fingerprint.ts'

t.test('every step under a recovered claim is refused, changes nothing, and is logged', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 1 },
    { name: 'account_2', slots: 1 },
  ])
  const id = await insertJob(sql, 'upscaler_jobs')
  const [stale] = await claim(sql, 1, 'fill-first', 'worker-a')
  t.equal(stale!.api_account, 'primary')
  // Worker A hangs past its lease: maintenance, deciding five minutes later, takes the claim back.
  await sql`select rhpool.run_maintenance(now() + interval '5 minutes')`
  // Its account cooling down, the job is claimed again on account_2 by worker B.
  await sql`select rhpool.cool_down_account('primary', 'test')`
  const [fresh] = await claim(sql, 1, 'fill-first', 'worker-b')
  t.equal(fresh!.job_id, id)
  t.equal(fresh!.api_account, 'account_2', 'claimed again, on another account')
  t.not(fresh!.claim_token, stale!.claim_token, 'under a new claim')

  const snapshot = async () => ({
    run: (
      await sql`select status, account, claim_token, holder, attempts, lease_expires_at, not_before, task_id from rhpool.runs where job_id = ${id}`
    )[0],
    job: (await sql`select status, api_account, attempts, task_id, error_code, error_message from upscaler_jobs where id = ${id}`)[0],
  })
  const before = await snapshot()
  const tok = stale!.claim_token
  const steps: Array<[string, () => Promise<unknown>]> = [
    ['claimed_job', async () => (await sql`select rhpool.claimed_job('upscaler_jobs', ${id}, ${tok}) as r`)[0]!.r],
    ['renew_lease', async () => (await sql`select rhpool.renew_lease('upscaler_jobs', ${id}, ${tok}, 60) as r`)[0]!.r],
    ['begin_submission', async () => (await sql`select rhpool.begin_submission('upscaler_jobs', ${id}, ${tok}, 30) as r`)[0]!.r],
    [
      'record_submission',
      async () => (await sql`select rhpool.record_submission('upscaler_jobs', ${id}, ${tok}, '1900000000000000777') as r`)[0]!.r,
    ],
    ['release_to_queue', async () => (await sql`select rhpool.release_to_queue('upscaler_jobs', ${id}, ${tok}, 'stale') as r`)[0]!.r],
    ['retry_later', async () => (await sql`select rhpool.retry_later('upscaler_jobs', ${id}, ${tok}, '1000', 'stale', 0) as r`)[0]!.r],
    ['fail_claim', async () => (await sql`select rhpool.fail_claim('upscaler_jobs', ${id}, ${tok}, 'X', 'stale') as r`)[0]!.r],
    [
      'mark_outcome_unknown',
      async () => (await sql`select rhpool.mark_outcome_unknown('upscaler_jobs', ${id}, ${tok}, 'stale') as r`)[0]!.r,
    ],
    [
      'account_was_full',
      async () => (await sql`select rhpool.account_was_full('upscaler_jobs', ${id}, ${tok}, 'primary', '421') as r`)[0]!.r,
    ],
  ]
  const answers: Record<string, unknown> = {}
  for (const [name, step] of steps) answers[name] = await step()
  t.same(
    answers,
    {
      claimed_job: null,
      renew_lease: false,
      begin_submission: null,
      record_submission: 'claimed',
      release_to_queue: false,
      retry_later: null,
      fail_claim: null,
      mark_outcome_unknown: null,
      account_was_full: null,
    },
    'each step says the claim is not its own (record_submission: the job is claimed, by another) and does nothing'
  )
  t.same(await snapshot(), before, 'the job and its run are exactly as worker B holds them')
  const [limit] = await sql`select learned_limit from rhpool.accounts where name = 'primary'`
  t.equal(limit!.learned_limit, null, 'a stale worker\'s "account full" teaches nothing')
  const refused = await sql`select detail from rhpool.maintenance_log where action = 'stale_claim_refused' and job_id = ${id} order by id`
  t.equal(refused.length, 8, 'every refused write is on record (claimed_job only reads)')
  t.match(refused[0]!.detail, new RegExp(`renew_lease under claim ${tok} refused: the job is claimed under claim ${fresh!.claim_token}`))

  // Worker B's own steps go through.
  await runClaimed(sql, fresh!, '1900000000000000778')
  const [done] =
    await sql`select rhpool.finish_job('upscaler_jobs', ${id}, '1900000000000000778', true, ${sql.json([{ fileUrl: 'https://cdn.example/o.png' }])}) as r`
  t.equal(done!.r, 'applied')
})

t.test(
  "a claim whose submission was under way when its lease ran out stays the job's: the answer that comes back is recorded, nothing is resent",
  async (t) => {
    const { sql } = await freshDatabase(t)
    await setAccounts(sql, [{ name: 'primary', slots: 1 }])
    const id = await insertJob(sql, 'upscaler_jobs')
    const [c] = await claim(sql, 1)
    await sql`select rhpool.begin_submission('upscaler_jobs', ${id}, ${c!.claim_token}, 30)`
    await sql`select rhpool.run_maintenance(now() + interval '1 minute')`
    t.match(
      (await sql`select status from rhpool.runs where job_id = ${id}`)[0],
      { status: 'outcome_unknown' },
      'sent, perhaps: never resubmitted'
    )
    t.same(await claim(sql, 1), [], 'the slot stays held')
    const [late] = await sql`select rhpool.record_submission('upscaler_jobs', ${id}, ${c!.claim_token}, '1900000000000000779') as r`
    t.equal(late!.r, 'running', "RunningHub's late answer is the task this claim paid for")
  }
)

t.test('a dispatcher paused (SIGSTOP) past its lease and resumed cannot touch the job another dispatcher now runs', async (t) => {
  const fast = { RHPOOL_MAINTENANCE_INTERVAL_MS: '1000' }
  // The task runs for as long as the test needs: the job stays the second dispatcher's, in flight.
  const sys = await startSystem(t, { slots: [1, 1], inProcess: false, sim: { taskDurationMs: 600_000 } })
  await markUpload(sys.db.sql, 'upscaler_jobs')
  const paused = spawnRhpool(t, { ...sys.env, ...fast, RHPOOL_HTTP: 'false' })
  const id = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/slow/6000/in.png` } })
  await sys.waitFor('the first dispatcher to claim and start downloading', async () => sys.files.requests.some((r) => r.includes('/slow/')))
  const [first] = await sys.db.sql`select account, claim_token from rhpool.runs where job_id = ${id}`
  t.equal(first!.account, 'primary')
  paused.child.kill('SIGSTOP')
  t.teardown(() => {
    paused.child.kill('SIGCONT')
  })

  // Past its lease (decided ten minutes ahead, not waited for), the claim is taken back; the
  // job is claimed again, on account_2 (primary cools down), by a second dispatcher.
  await sys.db.sql`select rhpool.run_maintenance(now() + interval '10 minutes')`
  await sys.db.sql`select rhpool.cool_down_account('primary', 'test', now() + interval '1 hour')`
  const second = await startService(loadConfig({ ...sys.env, ...fast }), createLogger('silent'))
  t.teardown(() => second.stop())
  // The second dispatcher holds the job now, on account_2, and is downloading its input (6 s):
  // its claim is 'claimed', the state in which only the token tells the two workers apart.
  const second_ = await sys.waitFor('the second dispatcher to claim the job and start its download', async () => {
    const [run] = await sys.db.sql`select claim_token, account, status from rhpool.runs where job_id = ${id}`
    const downloads = sys.files.requests.filter((r) => r.includes('/slow/')).length
    return run && run.claim_token !== first!.claim_token && run.status === 'claimed' && downloads >= 2 ? run : null
  })
  t.equal(second_.account, 'account_2', 'claimed again, on account_2')
  paused.child.kill('SIGCONT')
  // On resume its download ends (or its deadline fires): its next step, a renewal or a
  // retry, names its old claim and is refused.
  const refused = await sys.waitFor("the resumed dispatcher's step to be refused", async () => {
    const rows = await sys.db.sql`select detail from rhpool.maintenance_log where action = 'stale_claim_refused' and job_id = ${id}`
    return rows.length > 0 ? rows : null
  })
  t.match(refused[0]!.detail, new RegExp(`under claim ${first!.claim_token} refused`), 'refused and on record')
  await sys.waitFor('the resumed dispatcher to say it stopped working on the job', async () =>
    paused.output.some((line) => line.includes('was recovered; this worker stops'))
  )
  await sys.waitFor(
    'the job to run on account_2',
    async () =>
      (await sys.db.sql`select 1 from upscaler_jobs where id = ${id} and status = 'running' and api_account = 'account_2'`).length > 0
  )

  t.equal(tasksPerJob(sys.sim).get(`upscaler_jobs/${id}`), 1, 'one task at RunningHub')
  const keys = sys.sim.ledger.submissions.map((s) => s.apiKey)
  t.same(keys, [fingerprint(testKeys[1]!)], "submitted once, with account_2's key: the paused worker sent nothing with primary's")
  const [job] = await sys.db.sql`select status, api_account, attempts from upscaler_jobs where id = ${id}`
  t.same(
    job,
    { status: 'running', api_account: 'account_2', attempts: 2 },
    'the recovered claim counted an attempt; the job is as the second dispatcher left it'
  )
  const [run] = await sys.db.sql`select account, claim_token from rhpool.runs where job_id = ${id}`
  t.same(run, { account: 'account_2', claim_token: second_!.claim_token }, "under the second dispatcher's claim")
  t.equal(await paused.kill('SIGTERM'), 0, 'the resumed dispatcher still stops cleanly')
})
