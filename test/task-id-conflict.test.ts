// A task id that another job already holds (issue: the demo run twice hung at
// 2/24 — a restarted simulator handed out the first run's ids again). Neither
// the dispatcher nor the webhook may get stuck on it: the job is settled with
// TASK_ID_CONFLICT, the conflict is logged, every callback is answered 2xx
// once recorded, and the next jobs run as usual.
import t from 'tap'
import { loadConfig } from '../src/config/index.ts'
import { syncAccounts } from '../src/dispatcher/sync-accounts.ts'
import { createLogger } from '../src/log.ts'
import { startService } from '../src/service.ts'
import { taskIdGenerator } from '../simulator/random.ts'
import { webhookPath } from '../src/webhook/job-reference.ts'
import { claim, insertJob, runClaimed, setAccounts, type Claim } from './helpers/jobs.ts'
import { startSystem, testSecret } from './helpers/system.ts'

t.test("the simulator's task ids never repeat across starts or processes", async (t) => {
  const first = taskIdGenerator()
  const second = taskIdGenerator()
  const seen = new Set<string>()
  const malformed: string[] = []
  for (let i = 0; i < 20_000; i++) {
    for (const id of [first(), second()]) {
      if (!/^\d{19}$/.test(id)) malformed.push(id)
      seen.add(id)
    }
  }
  t.same(malformed, [], "every id is a 19-digit number, as RunningHub's are")
  t.equal(seen.size, 40_000, '40,000 ids from two generators (two processes, or two runs), all distinct')
  const again = taskIdGenerator({ repeatableSeed: 7 })
  const repeat = taskIdGenerator({ repeatableSeed: 7 })
  t.equal(again(), repeat(), 'the opt-in repeatable sequence does repeat (it reproduces a restarted RunningHub)')
})

t.test('a create answer with a task id another job holds settles the job; the dispatcher and the webhook go on', async (t) => {
  const seed = 4242
  const ids = taskIdGenerator({ repeatableSeed: seed })
  const reused = ids()
  const sys = await startSystem(t, { slots: [3], simOptions: { taskIdSeed: seed }, inProcess: false })
  const { sql } = sys.db
  // The account as an earlier dispatcher left it, its key recorded (no dispatcher is live yet).
  await syncAccounts(sql, sys.config.accounts)

  // An earlier run's job, finished, already holds the id the simulator hands out first.
  const old = await insertJob(sql, 'upscaler_jobs')
  // Claimed as the database's claim round would (no holder: no live dispatcher needed).
  const [c] = (await sql`select * from rhpool.claim_account_slot(1, null)`) as unknown as Claim[]
  await runClaimed(sql, c!, reused)
  await sql`select rhpool.finish_job('upscaler_jobs', ${old}, ${reused}, true, '[{"url":"https://out/old.png"}]'::jsonb)`

  const service = await startService(loadConfig(sys.env), createLogger('silent'))
  t.teardown(() => service.stop())
  const clash = await insertJob(sql, 'upscaler_jobs')
  const job = await sys.waitFor('the clashing job settled', async () => {
    const [row] = await sql`select * from upscaler_jobs where id = ${clash} and status = 'failed'`
    return row
  })
  t.equal(job.error_code, 'TASK_ID_CONFLICT', 'settled with a clear code')
  t.match(job.error_message, new RegExp(`task id ${reused}.*upscaler_jobs/${old}`), 'the message names the id and the job that holds it')
  t.equal(job.task_id, null, 'the id stays with the job that had it')
  const [oldJob] = await sql`select status, task_id, output_url from upscaler_jobs where id = ${old}`
  t.match(oldJob, { status: 'completed', task_id: reused, output_url: 'https://out/old.png' }, 'the old job is untouched')
  const [logged] = await sql`select count(*)::int as n from rhpool.maintenance_log where action = 'task_id_conflict' and job_id = ${clash}`
  t.equal(logged!.n, 1, 'the conflict is recorded in maintenance_log')
  const [events] = await sql`select count(*)::int as n from rhpool.job_events where job_id = ${clash}`
  t.equal(events!.n, 1, 'one terminal event, so the product can refund')

  // The simulator's callback for that task reaches the webhook: answered 2xx once recorded, never 500.
  await sys.waitFor('the task callback answered', async () => sys.sim.ledger.callbacksFor(reused).some((a) => a.status !== null))
  t.ok(
    sys.sim.ledger.callbacksFor(reused).every((a) => a.status === null || (a.status >= 200 && a.status < 300)),
    'every answer to it was 2xx'
  )

  // The dispatcher is not stuck: the next jobs get fresh ids and complete.
  const next = [await insertJob(sql, 'upscaler_jobs'), await insertJob(sql, 'veste_ai_jobs')]
  await sys.waitFor('the next jobs completed', async () => {
    const [row] = await sql`select count(*)::int as n from rhpool.jobs where id = any(${next}::uuid[]) and status = 'completed'`
    return row!.n === 2
  })
  t.pass('later jobs run as usual')
})

t.test('a signed callback naming a task another job holds changes nothing and is answered 2xx', async (t) => {
  const sys = await startSystem(t, { slots: [3], inProcess: false })
  const { sql } = sys.db
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const holder = await insertJob(sql, 'upscaler_jobs')
  const waiting = await insertJob(sql, 'upscaler_jobs')
  const claims = await claim(sql, 2)
  const holderClaim = claims.find((c) => c.job_id === holder)!
  await runClaimed(sql, holderClaim, '1999000000000000001')
  const waitingClaim = claims.find((c) => c.job_id === waiting)!
  await sql`select rhpool.begin_submission(${waitingClaim.job_table}, ${waiting}, ${waitingClaim.claim_token}, 30)`

  const service = await startService(loadConfig({ ...sys.env, RHPOOL_DISPATCHER: 'false' }), createLogger('silent'))
  t.teardown(() => service.stop())
  const url = `${service.url}${webhookPath(testSecret, { jobTable: 'upscaler_jobs', jobId: waiting, attempt: 1 })}`
  const body = JSON.stringify({
    event: 'TASK_END',
    taskId: '1999000000000000001',
    eventData: { taskId: '1999000000000000001', status: 'SUCCESS', results: [{ url: 'https://x/y.png', outputType: 'png' }] },
  })
  for (let i = 0; i < 2; i++) {
    const answer = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    t.equal(answer.status, 200, `delivery ${i + 1} answered 200`)
    t.match(await answer.json(), { outcome: 'task_mismatch' })
  }
  const [row] = await sql`select status, task_id, output_url from upscaler_jobs where id = ${waiting}`
  t.match(row, { status: 'submitting', task_id: null, output_url: null }, 'the waiting job is unchanged')
  const [other] = await sql`select status from upscaler_jobs where id = ${holder}`
  t.equal(other!.status, 'running', 'the job that holds the task is unchanged')
})
