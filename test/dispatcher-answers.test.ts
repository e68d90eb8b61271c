// Each class of RunningHub answer does what runninghub-api.md says it should.
import t from 'tap'
import { insertJob, markUpload } from './helpers/jobs.ts'
import { startSystem, tasksPerJob, testKeys } from './helpers/system.ts'

const completedCount = async (sys: Awaited<ReturnType<typeof startSystem>>) =>
  (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n as number

t.test('account full (421) at one slot: the job keeps its place, the account cools down, nothing fails', async (t) => {
  // Above one slot a 421 only lowers the learned limit (test/learned-limits*.test.ts).
  const sys = await startSystem(t, { slots: [1] })
  sys.sim.inject({ kind: 'errorCode', code: 421, message: 'TASK_QUEUE_MAXED' })
  await sys.db.sql`update rhpool.settings set value = '3' where key = 'cooldown_base_seconds'`
  const id = await insertJob(sys.db.sql, 'upscaler_jobs')
  const [cooled] = await sys.waitFor('the account to cool down', async () => {
    const rows = await sys.db
      .sql`select cooldown_reason, cooldown_until from rhpool.account_status where name = 'primary' and cooldown_until is not null`
    return rows.length ? rows : null
  })
  t.match(cooled!.cooldown_reason, /^421: TASK_QUEUE_MAXED/, 'status shows why the account is cooling down')
  const [queued] = await sys.db.sql`select status, attempts, api_account from upscaler_jobs where id = ${id}`
  t.same(queued, { status: 'queued', attempts: 0, api_account: null }, 'back in the queue, attempt given back')
  await sys.waitFor('the job to complete after the cooldown', async () => (await completedCount(sys)) === 1)
  const [job] = await sys.db.sql`select attempts from upscaler_jobs where id = ${id}`
  t.equal(job!.attempts, 1)
})

t.test('account broken (802, 416): the account is disabled with its reason, the job runs elsewhere', async (t) => {
  const sys = await startSystem(t, { slots: [3, 3] })
  // The key stops working everywhere (create, queue/status, accountStatus), as a revoked key does.
  sys.sim.removeAccount(testKeys[0]!)
  const id = await insertJob(sys.db.sql, 'pose_changer_jobs')
  await sys.waitFor('the job to complete', async () => (await completedCount(sys)) === 1)
  const [job] = await sys.db.sql`select api_account, attempts from pose_changer_jobs where id = ${id}`
  t.same(job, { api_account: 'account_2', attempts: 1 }, 'ran on account_2, and the failed try did not count against it')
  const [primary] = await sys.db.sql`select enabled, disabled_reason from rhpool.accounts where name = 'primary'`
  t.same(primary, { enabled: false, disabled_reason: '802: APIKEY_UNAUTHORIZED' })
  const status = await (await fetch(`${sys.adminUrl}/status`)).json()
  t.match(status.accounts[0], { name: 'primary', enabled: false, disabledReason: '802: APIKEY_UNAUTHORIZED', available: 0 })
})

t.test('bad request (301, 1505): the job fails with the code and a clear message', async (t) => {
  const sys = await startSystem(t, { slots: [3] })
  sys.sim.inject({ kind: 'errorCode', code: 301, message: 'PARAMS_INVALID' })
  const first = await insertJob(sys.db.sql, 'veste_ai_jobs')
  await sys.waitFor(
    'the job to fail',
    async () => (await sys.db.sql`select 1 from veste_ai_jobs where id = ${first} and status = 'failed'`).length > 0
  )
  sys.sim.inject({ kind: 'errorCode', code: 1505, message: 'content moderation' })
  const second = await insertJob(sys.db.sql, 'veste_ai_jobs')
  await sys.waitFor(
    'the second job to fail',
    async () => (await sys.db.sql`select 1 from veste_ai_jobs where id = ${second} and status = 'failed'`).length > 0
  )
  const rows = await sys.db.sql`select error_code, error_message, attempts from veste_ai_jobs order by created_at`
  t.same(rows, [
    { error_code: '301', error_message: 'PARAMS_INVALID', attempts: 1 },
    { error_code: '1505', error_message: 'content moderation', attempts: 1 },
  ])
  const [primary] = await sys.db.sql`select enabled, cooldown_until from rhpool.accounts`
  t.same(primary, { enabled: true, cooldown_until: null }, 'the account is not blamed for a bad request')
  const events = await sys.db.sql`select status, error_code from rhpool.job_events order by id`
  t.same(
    events,
    [
      { status: 'failed', error_code: '301' },
      { status: 'failed', error_code: '1505' },
    ],
    'each failure has its terminal event (for a refund)'
  )
})

t.test('transient (5xx, HTML page, 1000): retried with backoff, then completed; bounded when it never clears', async (t) => {
  const sys = await startSystem(t, { slots: [3] })
  sys.sim.inject({ kind: 'http5xx', status: 503 })
  sys.sim.inject({ kind: 'html', status: 502 })
  sys.sim.inject({ kind: 'errorCode', code: 1000 })
  const id = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor('the job to complete', async () => (await completedCount(sys)) === 1)
  const [job] = await sys.db.sql`select attempts, error_code from upscaler_jobs where id = ${id}`
  t.equal(job!.attempts, 4, 'three transient failures, then success on the fourth attempt')
  t.equal(tasksPerJob(sys.sim).get(`upscaler_jobs/${id}`), 1, 'exactly one task was created')

  sys.sim.inject({ kind: 'http5xx', status: 500, times: Infinity })
  const doomed = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { max_attempts: 3 } })
  await sys.waitFor(
    'the job to give up',
    async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${doomed} and status = 'failed'`).length > 0
  )
  const [gaveUp] = await sys.db.sql`select attempts, error_code, error_message from upscaler_jobs where id = ${doomed}`
  t.match(gaveUp, { attempts: 3, error_code: 'HTTP_500', error_message: /gave up after 3 attempts/ })
})

t.test('timeout after sending: outcome unknown, never resubmitted; the callback settles it', async (t) => {
  const sys = await startSystem(t, { slots: [3], env: { RHPOOL_REQUEST_TIMEOUT_MS: '400' }, sim: { taskDurationMs: 1500 } })
  sys.sim.inject({ kind: 'acceptThenHang' })
  const id = await insertJob(sys.db.sql, 'video_upscaler_jobs')
  await sys.waitFor(
    'the outcome to be unknown',
    async () => (await sys.db.sql`select 1 from video_upscaler_jobs where id = ${id} and status = 'outcome_unknown'`).length > 0
  )
  const [slot] = await sys.db.sql`select count(*)::int as n from rhpool.runs where account is not null`
  t.equal(slot!.n, 1, 'the job keeps its slot while RunningHub may be running it')
  await sys.waitFor('the callback to complete the job', async () => (await completedCount(sys)) === 1, 15_000)
  const [job] = await sys.db.sql`select attempts, task_id from video_upscaler_jobs where id = ${id}`
  t.equal(job!.attempts, 1, 'one attempt')
  t.ok(job!.task_id, 'the task id came with the callback')
  t.equal(sys.sim.ledger.submissions.length, 1, 'RunningHub saw exactly one submission')
})

t.test('a network failure before sending is retried (nothing reached RunningHub)', async (t) => {
  const sys = await startSystem(t, { slots: [3], inProcess: false })
  const { loadConfig } = await import('../src/config/index.ts')
  const { startService } = await import('../src/service.ts')
  const { createLogger } = await import('../src/log.ts')
  const { freePort } = await import('../src/localdb/cluster.ts')
  const deadPort = await freePort()
  const service = await startService(
    loadConfig({ ...sys.env, RUNNINGHUB_BASE_URL: `http://127.0.0.1:${deadPort}`, RHPOOL_HTTP: 'false' }),
    createLogger('silent')
  )
  t.teardown(() => service.stop())
  const id = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { max_attempts: 2 } })
  await sys.waitFor(
    'the job to give up',
    async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${id} and status = 'failed'`).length > 0
  )
  const [job] = await sys.db.sql`select attempts, error_code from upscaler_jobs where id = ${id}`
  t.same(job, { attempts: 2, error_code: 'ECONNREFUSED' }, 'connection refused is transient and safe to retry')
})

t.test('cancelling a running job cancels its task at RunningHub with the right key', async (t) => {
  // cancelStatus 'CANCEL': a status no official source shows, turned on so the cancel is visible as such.
  const sys = await startSystem(t, { slots: [1, 1], sim: { taskDurationMs: 60_000, cancelStatus: 'CANCEL' } })
  const a = await insertJob(sys.db.sql, 'upscaler_jobs')
  const b = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor(
    'both running',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'running'`)[0]!.n === 2
  )
  const [row] = await sys.db.sql`select task_id, api_account from upscaler_jobs where id = ${b}`
  const [answer] = await sys.db.sql`select rhpool.cancel_job('upscaler_jobs', ${b}) as r`
  t.equal(answer!.r, 'cancel_requested')
  await sys.waitFor(
    'the job to be cancelled',
    async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${b} and status = 'cancelled'`).length > 0
  )
  t.equal(sys.sim.task(row!.task_id)?.status, 'CANCEL', 'RunningHub cancelled the task')
  t.equal(
    sys.sim.task(row!.task_id)?.apiKey,
    sys.sim.ledger.submissions.find((s) => s.taskId === row!.task_id)?.apiKey,
    'with the key that started it'
  )
  const [other] = await sys.db.sql`select status from upscaler_jobs where id = ${a}`
  t.equal(other!.status, 'running', 'the other job is untouched')
  const [event] = await sys.db.sql`select status from rhpool.job_events where job_id = ${b}`
  t.equal(event!.status, 'cancelled')
})

t.test('inputs marked upload are uploaded with the key of the account that runs the job', async (t) => {
  const sys = await startSystem(t, { slots: [1, 1], sim: { taskDurationMs: 300 } })
  await markUpload(sys.db.sql, 'upscaler_jobs')
  for (let i = 0; i < 4; i++) await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/in-${i}.png` } })
  await sys.waitFor('four completed', async () => (await completedCount(sys)) === 4, 20_000)
  const accounts = new Set((await sys.db.sql`select api_account from upscaler_jobs`).map((r) => r.api_account))
  t.same([...accounts].sort(), ['account_2', 'primary'], 'both accounts ran jobs')
  t.equal(
    sys.sim.ledger.submissions.filter((s) => s.outcome !== 'accepted').length,
    0,
    'no submission was refused: every file was visible to the key that used it (the simulator answers 803 otherwise)'
  )

  const missing = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/missing.png` } })
  await sys.waitFor(
    'the job with a missing input to fail',
    async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${missing} and status = 'failed'`).length > 0
  )
  const [failed] = await sys.db.sql`select error_code, error_message from upscaler_jobs where id = ${missing}`
  t.match(failed, { error_code: 'INPUT_DOWNLOAD_FAILED', error_message: /input_url could not be downloaded: HTTP 404/ })
})

t.test(
  'without the allowance a field marked upload that points at 127.0.0.1 fails the job, and the file server is never asked',
  async (t) => {
    const sys = await startSystem(t, { slots: [1], env: { RHPOOL_ALLOW_PRIVATE_INPUTS: 'false' } })
    await markUpload(sys.db.sql, 'upscaler_jobs')
    const id = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/latest/meta-data.png` } })
    await sys.waitFor(
      'the job to fail',
      async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${id} and status = 'failed'`).length > 0
    )
    const [failed] = await sys.db
      .sql`select error_code, error_message, attempts, rhpool.user_message(status, error_code) as shown from upscaler_jobs where id = ${id}`
    t.match(failed, {
      error_code: 'INVALID_INPUT_URL',
      error_message: /input_url was refused: 127\.0\.0\.1 is not a public address \(loopback\)/,
      shown: /inputs were not accepted/,
    })
    t.same(sys.files.requests, [], 'nothing was requested from 127.0.0.1')
    t.equal(sys.sim.ledger.submissions.length, 0, 'nothing was sent to RunningHub')
  }
)

t.test('an input download that outlives its deadline counts an attempt each time and fails once they are used', async (t) => {
  const sys = await startSystem(t, { slots: [1], env: { RHPOOL_INPUT_DEADLINE_MS: '300' } })
  await markUpload(sys.db.sql, 'upscaler_jobs')
  const id = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/slow/5000/in.png`, max_attempts: 2 } })
  await sys.waitFor(
    'the job to fail',
    async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${id} and status = 'failed'`).length > 0
  )
  const [failed] = await sys.db.sql`select error_code, error_message, attempts from upscaler_jobs where id = ${id}`
  t.match(failed, {
    error_code: 'INPUT_DOWNLOAD_FAILED',
    attempts: 2,
    error_message: /did not finish downloading within 300 ms \(gave up after 2 attempts\)/,
  })
  t.equal(sys.files.requests.length, 2, 'one download per attempt')
  t.equal(sys.sim.ledger.submissions.length, 0, 'nothing was sent to RunningHub')
})
