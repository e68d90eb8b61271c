// The webhook route and the status API over real HTTP.
import t from 'tap'
import { request as httpRequest } from 'node:http'
import { insertJob } from './helpers/jobs.ts'
import { startSystem, testKeys, testSecret } from './helpers/system.ts'
import { webhookPath } from '../src/webhook/job-reference.ts'
import { loadConfig } from '../src/config/index.ts'

type Sys = Awaited<ReturnType<typeof startSystem>>

async function post(sys: Sys, path: string, body: string, contentType = 'application/json') {
  const response = await fetch(sys.baseUrl + path, { method: 'POST', headers: { 'content-type': contentType }, body })
  return { status: response.status, text: await response.text() }
}

/** A POST from a chosen local address (another "source IP" on loopback). */
function postFrom(localAddress: string, sys: Sys, path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port: sys.port, path, method: 'POST', localAddress, headers: { 'content-type': 'application/json' } },
      (response) => {
        let text = ''
        response.on('data', (chunk) => (text += chunk))
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }))
      }
    )
    request.on('error', reject)
    request.end(body)
  })
}

async function runningJob(sys: Sys, table = 'upscaler_jobs') {
  const id = await insertJob(sys.db.sql, table as 'upscaler_jobs')
  const [job] = await sys.waitFor('the job to run', async () => {
    const rows = await sys.db.sql`select id, task_id, attempts from rhpool.jobs where id = ${id} and status = 'running'`
    return rows.length ? rows : null
  })
  return {
    id,
    taskId: job!.task_id as string,
    path: webhookPath(testSecret, { jobTable: table, jobId: id, attempt: job!.attempts as number }),
  }
}

const v2Success = (taskId: string) =>
  JSON.stringify({
    event: 'TASK_END',
    taskId,
    eventData: {
      taskId,
      status: 'SUCCESS',
      errorCode: '',
      errorMessage: '',
      results: [{ url: 'https://cdn.example/out.png', nodeId: '9', outputType: 'png', text: null }],
      usage: { consumeMoney: '0.08', consumeCoins: '8', taskCostTime: '12', thirdPartyConsumeMoney: '0' },
    },
  })

// These two play RunningHub's callbacks themselves for tasks the simulator is still running, to
// test how a callback's content is read and applied: they trust callbacks as sent (the opt-out).
const trusted = { RHPOOL_CONFIRM_CALLBACKS: 'false' }

t.test('callbacks of both shapes complete and fail jobs; every delivery is recorded', async (t) => {
  const sys = await startSystem(t, { slots: [6], sim: { taskDurationMs: 60_000 }, env: trusted })
  const { sql } = sys.db

  const a = await runningJob(sys)
  const ok = await post(sys, a.path, v2Success(a.taskId))
  t.equal(ok.status, 200)
  const [done] = await sql`select status, output_url, rh_cost::text, rh_usage, error_code from upscaler_jobs where id = ${a.id}`
  t.same(
    done,
    {
      status: 'completed',
      output_url: 'https://cdn.example/out.png',
      rh_cost: '0.08',
      rh_usage: { consumeMoney: '0.08', consumeCoins: '8', taskCostTime: '12', thirdPartyConsumeMoney: '0' },
      error_code: null,
    },
    "completed with RunningHub's outputs and cost, as sent"
  )
  const [slot] = await sql`select count(*)::int as n from rhpool.runs where account is not null and job_id = ${a.id}`
  t.equal(slot!.n, 0, 'its slot is free')

  const b = await runningJob(sys)
  const failed = await post(
    sys,
    b.path,
    JSON.stringify({
      event: 'TASK_END',
      taskId: b.taskId,
      eventData: {
        taskId: b.taskId,
        status: 'FAILED',
        errorCode: '805',
        errorMessage: 'workflow failed',
        failedReason: {
          node_id: '26',
          node_name: 'KSampler',
          exception_type: 'OutOfMemoryError',
          exception_message: 'CUDA out of memory',
          traceback: '...',
        },
      },
    })
  )
  t.equal(failed.status, 200)
  const [bad] = await sql`select status, error_code, error_message from upscaler_jobs where id = ${b.id}`
  t.same(bad, { status: 'failed', error_code: '805', error_message: 'KSampler: OutOfMemoryError: CUDA out of memory' })

  const c = await runningJob(sys)
  const classic = await post(
    sys,
    c.path,
    JSON.stringify({
      event: 'TASK_END',
      taskId: c.taskId,
      eventData: JSON.stringify({
        code: 0,
        msg: 'success',
        data: [{ fileUrl: 'https://cdn.example/c.png', fileType: 'png', taskCostTime: '7', nodeId: '9' }],
      }),
    })
  )
  t.equal(classic.status, 200)
  const [classicJob] = await sql`select status, output_url from upscaler_jobs where id = ${c.id}`
  t.same(classicJob, { status: 'completed', output_url: 'https://cdn.example/c.png' }, 'classic shape: eventData as a JSON string')

  const d = await runningJob(sys)
  const classicFail = await post(
    sys,
    d.path,
    JSON.stringify({ event: 'TASK_END', taskId: d.taskId, eventData: JSON.stringify({ code: 805, msg: 'failed', data: null }) })
  )
  t.equal(classicFail.status, 200)
  const [classicFailed] = await sql`select status, error_code from upscaler_jobs where id = ${d.id}`
  t.same(classicFailed, { status: 'failed', error_code: '805' })

  const deliveries = await sql`select outcome from rhpool.webhook_deliveries order by id`
  t.same(
    deliveries.map((r) => r.outcome),
    ['applied', 'applied', 'applied', 'applied']
  )
})

t.test('forged, malformed, oversized, foreign-event and duplicate deliveries change nothing', async (t) => {
  const sys = await startSystem(t, { slots: [6], sim: { taskDurationMs: 60_000 }, env: trusted })
  const { sql } = sys.db
  const job = await runningJob(sys)
  const snapshot = async () =>
    (await sql`select status, task_id, output_url, error_code, attempts from upscaler_jobs where id = ${job.id}`)[0]

  const before = await snapshot()
  const forgedPath = job.path.replace(/\/[^/]+$/, '/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')
  t.equal((await post(sys, forgedPath, v2Success(job.taskId))).status, 401, 'wrong signature: 401')
  const otherJob = job.path.replace(job.id, '00000000-0000-4000-8000-000000000000')
  t.equal((await post(sys, otherJob, v2Success(job.taskId))).status, 401, 'a signature for another job: 401')
  t.equal((await post(sys, job.path.replace(/\/1\//, '/2/'), v2Success(job.taskId))).status, 401, 'another attempt: 401')
  t.equal((await post(sys, job.path, '{"event": "TASK_END", ')).status, 400, 'broken JSON: 400')
  t.equal((await post(sys, job.path, JSON.stringify({ hello: 'world' }))).status, 400, 'not a callback: 400')
  t.equal(
    (await post(sys, job.path, JSON.stringify({ event: 'TASK_END', taskId: job.taskId, eventData: '{not json' }))).status,
    400,
    'eventData string that is not JSON: 400'
  )
  t.equal(
    (await post(sys, job.path, JSON.stringify({ event: 'TASK_END', taskId: job.taskId, eventData: { status: 'RUNNING' } }))).status,
    400,
    'TASK_END that is not final: 400'
  )
  t.equal((await post(sys, job.path, 'x'.repeat(2 * 1024 * 1024))).status, 413, 'two megabytes: 413')
  const foreign = await post(sys, job.path, JSON.stringify({ event: 'TASK_START', taskId: job.taskId, eventData: { status: 'RUNNING' } }))
  t.equal(foreign.status, 200, 'an event other than TASK_END: 2xx')
  t.same(await snapshot(), before, 'the job did not change')

  const outcomes = (await sql`select outcome, http_status from rhpool.webhook_deliveries order by id`).map(
    (r) => `${r.outcome}:${r.http_status}`
  )
  t.same(
    outcomes,
    [
      'bad_signature:401',
      'bad_signature:401',
      'bad_signature:401',
      'malformed:400',
      'malformed:400',
      'malformed:400',
      'malformed:400',
      'too_large:413',
      'ignored_event:200',
    ],
    'each one recorded for inspection'
  )

  const copies = await Promise.all(Array.from({ length: 5 }, () => post(sys, job.path, v2Success(job.taskId))))
  t.same(
    copies.map((c) => c.status),
    [200, 200, 200, 200, 200],
    'five concurrent copies all get a 2xx'
  )
  const contradicting = await post(
    sys,
    job.path,
    JSON.stringify({ event: 'TASK_END', taskId: job.taskId, eventData: { status: 'FAILED', errorCode: '805' } })
  )
  t.equal(contradicting.status, 200, 'a late contradicting delivery also gets a 2xx')
  const [final] = await sql`select status from upscaler_jobs where id = ${job.id}`
  t.equal(final!.status, 'completed')
  const [events] = await sql`select count(*)::int as n from rhpool.job_events where job_id = ${job.id}`
  t.equal(events!.n, 1, 'exactly one terminal event')
  const applied =
    await sql`select outcome, count(*)::int as n from rhpool.webhook_deliveries where outcome in ('applied', 'duplicate') group by 1 order by 1`
  t.same(applied, [
    { outcome: 'applied', n: 1 },
    { outcome: 'duplicate', n: 5 },
  ])
})

t.test(
  'a flood of forged deliveries: 429 past the limit, a bounded number of rows, a signed callback from another address still works',
  async (t) => {
    const perMinute = 10
    const sys = await startSystem(t, {
      slots: [2],
      sim: { taskDurationMs: 60_000 },
      env: { RHPOOL_WEBHOOK_INVALID_PER_MINUTE: String(perMinute) },
    })
    const { sql } = sys.db
    const job = await runningJob(sys)
    const forged = job.path.replace(/\/[^/]+$/, '/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')
    const before = (await sql`select count(*)::int as n from rhpool.webhook_deliveries`)[0]!.n as number
    const flood = 200
    const statuses: number[] = []
    // From 127.0.0.1, 4 KB each, one after another (a token bucket does not care about concurrency).
    for (let i = 0; i < flood; i++)
      statuses.push((await post(sys, forged, JSON.stringify({ event: 'TASK_END', pad: 'x'.repeat(4096), i }))).status)
    t.same(statuses.slice(0, perMinute), Array(perMinute).fill(401), `the first ${perMinute}: 401`)
    t.ok(
      statuses.slice(perMinute + 2).every((s) => s === 429),
      'past the limit: 429 (a token or two may refill meanwhile)'
    )
    const limited = await fetch(sys.baseUrl + forged, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    t.equal(limited.status, 429)
    t.ok(Number(limited.headers.get('retry-after')) >= 1, 'with a Retry-After')

    const rows = await sql`select outcome, length(body) as body_length, detail from rhpool.webhook_deliveries order by id offset ${before}`
    t.ok(rows.length <= 5, `${rows.length} sample rows kept for ${flood} forgeries (at most 5 an hour)`)
    t.ok(
      rows.every((r) => r.outcome === 'bad_signature' && (r.body_length as number) <= 256),
      'bodies cut at 256 characters'
    )
    t.match(rows[0]!.detail, /^from 127\.0\.0\.1: the signature does not match/, 'the sample names the source')
    const counted =
      await sql`select sum(deliveries)::int as n, count(*)::int as buckets from rhpool.webhook_rejections where outcome = 'bad_signature'`
    t.equal(counted[0]!.n, statuses.filter((s) => s === 401).length, 'every 401 is counted; 429s never reached the database')
    t.ok((counted[0]!.buckets as number) <= 2, 'in one counter row per minute')

    // RunningHub is another address: 127.0.0.2 (all of 127/8 is loopback here).
    const signed = await postFrom('127.0.0.2', sys, job.path, v2Success(job.taskId))
    t.equal(signed.status, 200, 'a correctly signed callback from another address is taken')
    t.match(JSON.parse(signed.text), { ok: true, outcome: /^(applied|unconfirmed)$/ })
    t.equal(
      (await post(sys, job.path, v2Success(job.taskId))).status,
      200,
      'and from the flooding address too: signed deliveries spend no token'
    )
    t.equal(
      (await sql`select count(*)::int as n from rhpool.webhook_deliveries where job_id = ${job.id}`)[0]!.n,
      2,
      'both recorded against the job'
    )
  }
)

t.test('a callback that beats the create answer is applied', async (t) => {
  const sys = await startSystem(t, { slots: [3] })
  // One job at a time, so each fault lands on the job meant for it.
  sys.sim.inject({ kind: 'callbackEarly' })
  const early = await insertJob(sys.db.sql, 'veste_ai_jobs')
  await sys.waitFor(
    'the first completed',
    async () => (await sys.db.sql`select count(*)::int as n from veste_ai_jobs where status = 'completed'`)[0]!.n === 1
  )
  sys.sim.inject({ kind: 'callbackDuplicate', copies: 3, concurrent: true })
  const dup = await insertJob(sys.db.sql, 'veste_ai_jobs')
  await sys.waitFor(
    'both completed',
    async () => (await sys.db.sql`select count(*)::int as n from veste_ai_jobs where status = 'completed'`)[0]!.n === 2
  )
  const [job] = await sys.db.sql`select task_id from veste_ai_jobs where id = ${early}`
  const callbackAt = sys.sim.ledger.callbacksFor(job!.task_id)[0]!.at
  t.ok(callbackAt > 0, 'the callback was delivered (before the create answer, by the fault)')
  // Held as claims (the default) and decided once RunningHub confirmed them: what each came to.
  const decided = async (jobId: string) =>
    await sys.waitFor('every delivery decided', async () => {
      const rows = await sys.db.sql`select outcome, resolution from rhpool.webhook_deliveries where job_id = ${jobId} order by id`
      const came = rows.map((r) =>
        r.outcome === 'unconfirmed' ? /^(?:confirmed: )?(\w+)/.exec(String(r.resolution ?? ''))?.[1] : r.outcome
      )
      return came.every(Boolean) ? (came as string[]) : null
    })
  const deliveries = await decided(early)
  // (A receiver slower than the simulator's patience gets a resend: those must be duplicates.)
  t.equal(deliveries[0], 'applied', 'applied once RunningHub confirmed it, though the task id was not saved yet')
  t.ok(
    deliveries.slice(1).every((d) => d === 'duplicate'),
    'any resend changed nothing'
  )
  // The job completes on the first copy; the other two may still be in flight. Each delivery is
  // recorded before it is answered, so once the simulator has all three answers, all three rows exist.
  const [dupJob] = await sys.db.sql`select task_id from veste_ai_jobs where id = ${dup}`
  await sys.waitFor(
    'all three copies answered',
    async () => sys.sim.ledger.callbacksFor(dupJob!.task_id).filter((a) => a.status !== null).length >= 3
  )
  const dupOutcomes = await decided(dup)
  t.equal(dupOutcomes.filter((d) => d === 'applied').length, 1, 'three concurrent copies: applied once')
  t.ok(
    dupOutcomes.length >= 3 && dupOutcomes.every((d) => ['applied', 'duplicate'].includes(d)),
    `the others were duplicates (${dupOutcomes.join(', ')})`
  )
  const [events] = await sys.db.sql`select count(*)::int as n from rhpool.job_events`
  t.equal(events!.n, 2)
})

t.test('a callback without a task id, or naming another task, never finishes a job', async (t) => {
  const sys = await startSystem(t, { slots: [3], sim: { taskDurationMs: 60_000 } })
  const { sql } = sys.db
  const a = await runningJob(sys)
  const b = await runningJob(sys)
  const noTask = JSON.stringify({
    event: 'TASK_END',
    eventData: { status: 'SUCCESS', results: [{ url: 'https://cdn.example/x.png', nodeId: '9', outputType: 'png' }] },
  })
  t.match(JSON.parse((await post(sys, a.path, noTask)).text), { outcome: 'unconfirmed' }, 'no task id: held')
  t.match(
    JSON.parse((await post(sys, a.path, v2Success(b.taskId))).text),
    { outcome: 'task_mismatch' },
    "b's task on a's URL: refused on arrival"
  )
  t.match(
    JSON.parse((await post(sys, a.path, v2Success('1999999999999999999'))).text),
    { outcome: 'task_mismatch' },
    'a task a does not run: refused on arrival'
  )
  const held = await sys.waitFor(
    'the held claim to be decided',
    async () =>
      (
        await sql`select resolution from rhpool.webhook_deliveries where job_id = ${a.id} and outcome = 'unconfirmed' and resolution is not null`
      )[0]?.resolution as string | undefined
  )
  t.match(held, /^refuted: the callback names no task/, 'no task id: refuted without asking RunningHub')
  t.same(
    (await sql`select status from rhpool.jobs where id in (${a.id}, ${b.id}) order by status`).map((r) => r.status),
    ['running', 'running'],
    'both jobs still run'
  )
})

t.test('GET /status, /jobs, /healthz, /readyz and /metrics', async (t) => {
  const sys = await startSystem(t, { slots: [2, 1], sim: { taskDurationMs: 60_000 } })
  for (let i = 0; i < 3; i++) await insertJob(sys.db.sql, 'upscaler_jobs', { createdAt: new Date(Date.now() - 10_000 + i) })
  const queued = [await insertJob(sys.db.sql, 'video_upscaler_jobs'), await insertJob(sys.db.sql, 'pose_changer_jobs')]
  await sys.waitFor(
    'three running',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'running'`)[0]!.n === 3
  )

  const status = await (await fetch(`${sys.adminUrl}/status`)).json()
  t.match(
    status,
    {
      totalMaxSlots: 3,
      totalRunning: 3,
      totalQueued: 2,
      accounts: [
        { name: 'primary', running: 2, maxSlots: 2, available: 0 },
        { name: 'account_2', running: 1, maxSlots: 1, available: 0 },
      ],
      queuedByTool: { upscaler: 0, pose_changer: 1, veste_ai: 0, video_upscaler: 1 },
    },
    "the plan's JSON"
  )
  const [fromSql] = await sys.db.sql`select rhpool.pool_status() as s`
  t.same({ ...status, oldestQueuedSeconds: 0 }, { ...fromSql!.s, oldestQueuedSeconds: 0 }, 'the same answer as the SQL function')

  const job = await (await fetch(`${sys.adminUrl}/jobs/pose_changer_jobs/${queued[1]}`)).json()
  t.match(job, { status: 'queued', position: 2, apiAccount: null })
  t.equal((await fetch(`${sys.adminUrl}/jobs/users/${queued[1]}`)).status, 404)
  t.match(await (await fetch(`${sys.adminUrl}/jobs/pose_changer_jobs/nope`)).json(), { error: /must be a uuid/ })
  t.equal((await fetch(`${sys.adminUrl}/jobs/pose_changer_jobs/00000000-0000-4000-8000-000000000000`)).status, 404)

  t.same(await (await fetch(`${sys.baseUrl}/healthz`)).json(), { ok: true })
  t.same(await (await fetch(`${sys.adminUrl}/healthz`)).json(), { ok: true }, '/healthz is on both listeners')
  t.match(await (await fetch(`${sys.adminUrl}/readyz`)).json(), { ok: true, database: true, listening: true })
  const metrics = await (await fetch(`${sys.adminUrl}/metrics`)).text()
  for (const name of [
    'rhpool_queue_depth{tool="video_upscaler"} 1',
    'rhpool_account_running{account="primary"} 2',
    'rhpool_account_slots{account="account_2"} 1',
    'rhpool_claims_total',
    'rhpool_submissions_total{account="primary",result="accepted"} 2',
    'rhpool_submission_latency_seconds_bucket',
  ]) {
    t.ok(metrics.includes(name), `metrics has ${name}`)
  }
})

t.test(
  "only the webhook route and /healthz are public: the operator's routes answer 404 there, and work on the admin listener",
  async (t) => {
    const sys = await startSystem(t, { slots: [1], sim: { taskDurationMs: 60_000 } })
    const job = await runningJob(sys)
    const adminPaths = ['/status', `/jobs/upscaler_jobs/${job.id}`, '/dashboard', '/dashboard/data', '/metrics', '/readyz']
    for (const path of adminPaths) {
      const onPublic = await fetch(sys.baseUrl + path)
      t.equal(onPublic.status, 404, `public ${path}: 404`)
      t.notMatch(await onPublic.text(), /primary|running|rhpool_/, `public ${path}: says nothing about the pool`)
      t.equal((await fetch(sys.adminUrl + path)).status, 200, `admin ${path}: 200`)
    }
    t.equal((await fetch(sys.baseUrl + '/healthz')).status, 200, 'public /healthz: 200')
    t.equal(
      (await post(sys, job.path, JSON.stringify({ event: 'TASK_START', taskId: job.taskId }))).status,
      200,
      'the webhook route is on the public listener'
    )
    const onAdmin = await fetch(sys.adminUrl + job.path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: 'TASK_START', taskId: job.taskId }),
    })
    t.equal(onAdmin.status, 404, 'and only there')
    t.equal(new URL(sys.adminUrl).hostname, '127.0.0.1', 'the admin listener is on loopback')
    const { ADMIN_PORT: _port, ...unset } = sys.env
    t.same(
      [loadConfig(unset).http.adminHost, loadConfig(unset).http.adminPort],
      ['127.0.0.1', 8081],
      'unset: loopback, 8081, as the README says'
    )
    t.throws(
      () => loadConfig({ ...sys.env, ADMIN_PORT: sys.env.PORT! }),
      /ADMIN_PORT must differ from PORT/,
      'one port for both is refused'
    )
  }
)

t.test('no key or secret in any log line or HTTP answer', async (t) => {
  const sys = await startSystem(t, { slots: [1, 1] })
  sys.sim.inject({ kind: 'errorCode', code: 802, message: 'APIKEY_UNAUTHORIZED', apiKey: testKeys[0] })
  sys.sim.inject({ kind: 'http5xx', status: 500 })
  for (let i = 0; i < 4; i++) await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/in-${i}.png` } })
  await sys.waitFor(
    'four completed',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n === 4,
    30_000
  )
  const answers = await Promise.all(
    ['/status', '/metrics', '/readyz', `/jobs/upscaler_jobs/${(await sys.jobs())[0]!.id}`].map(async (p) =>
      (await fetch(sys.adminUrl + p)).text()
    )
  )
  const tables = await sys.db
    .sql`select (select json_agg(a) from rhpool.accounts a)::text || (select json_agg(d) from rhpool.webhook_deliveries d)::text || (select json_agg(j) from upscaler_jobs j)::text as dump`
  const haystack = [sys.logs.join(''), ...answers, tables[0]!.dump as string].join('\n')
  t.ok(sys.logs.length > 10, `${sys.logs.length} log lines searched`)
  for (const secret of [...testKeys.slice(0, 2), testSecret]) {
    t.notOk(haystack.includes(secret), `${secret.slice(0, 10)}… appears nowhere`)
  }
})

t.test('by default a callback is only a claim until RunningHub confirms it with query', async (t) => {
  const sys = await startSystem(t, { slots: [2], sim: { taskDurationMs: 2500 } })
  t.equal(sys.config.dispatcher.confirmCallbacks, true, 'RHPOOL_CONFIRM_CALLBACKS is on unless turned off')
  const job = await runningJob(sys)
  // Correctly signed, but untrue: the task is still running at RunningHub.
  const lie = await post(sys, job.path, v2Success(job.taskId))
  t.equal(lie.status, 200)
  t.match(JSON.parse(lie.text), { outcome: 'unconfirmed' })
  await sys.waitFor(
    'the claim to be checked',
    async () =>
      (await sys.db.sql`select 1 from rhpool.webhook_deliveries where job_id = ${job.id} and resolution like 'refuted%'`).length > 0
  )
  t.equal(
    (await sys.db.sql`select status from upscaler_jobs where id = ${job.id}`)[0]!.status,
    'running',
    'RunningHub said RUNNING: nothing changed'
  )
  await sys.waitFor(
    'the real end to be confirmed and applied',
    async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${job.id} and status = 'completed'`).length > 0,
    15_000
  )
  const [done] = await sys.db.sql`select output_url from upscaler_jobs where id = ${job.id}`
  t.not(done!.output_url, 'https://cdn.example/out.png', "the outputs are RunningHub's, from query, not the forged callback's")
  const resolutions = (await sys.db.sql`select resolution from rhpool.webhook_deliveries where job_id = ${job.id} order by id`).map(
    (r) => r.resolution
  )
  t.match(resolutions, [/^refuted: RunningHub says (RUNNING|QUEUED)/, /^confirmed: applied/])
})

// The route and the dispatcher in one process (rhpool's default): a callback for the task this
// process submitted is handed straight to its own confirmer (rhpool.hand_over_claim), leased
// in the delivery's own insert; no notification or claiming round stands in between.
t.test('a callback for a task this process runs is confirmed by the process that received it', async (t) => {
  const sys = await startSystem(t, { slots: [2], sim: { taskDurationMs: 200 } })
  const id = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor(
    'the job to be completed',
    async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${id} and status = 'completed'`).length > 0
  )
  const deliveries = await sys.db.sql`select outcome, detail, resolution, confirm_after - received_at as lease,
      resolved_at < confirm_after as within_lease from rhpool.webhook_deliveries where job_id = ${id} order by id`
  t.match(deliveries[0], {
    outcome: 'unconfirmed',
    detail: 'handed to the receiving process to confirm with query',
    resolution: /^confirmed: applied/,
    // RHPOOL_REQUEST_TIMEOUT_MS 2000 + 5 s: the lease taken with the delivery, never taken again by a round.
    lease: '00:00:07',
  })
  t.equal(deliveries[0]!.within_lease, true, 'confirmed by the lease holder, within its lease')
})

// The chaos run once ended with a completed job whose task had FAILED at RunningHub: the true
// TASK_END's first delivery failed, and a contradicting SUCCESS (the simulator's 'second-end')
// arrived first. Trusted as it came, it completed the job (and a refund would never be due).
// A callback is a claim: checked with RunningHub's query first (RHPOOL_CONFIRM_CALLBACKS, on by
// default), a false one changes nothing. (Trusted as it comes, it would complete the job.)
t.test('by default, a correctly signed false SUCCESS that beats the true callback does not complete a failed task', async (t) => {
  const sys = await startSystem(t, { slots: [1], sim: { taskDurationMs: 300 } })
  sys.sim.inject({ kind: 'taskFailure' })
  sys.sim.inject({ kind: 'callbackLost' })
  const job = await runningJob(sys)
  await sys.waitFor('the task to fail at RunningHub', async () => sys.sim.task(job.taskId)?.status === 'FAILED')
  const lie = await post(sys, job.path, v2Success(job.taskId))
  t.equal(lie.status, 200, 'the claim is recorded and answered 2xx')
  const [settled] = await sys.waitFor('the job to settle', async () => {
    const rows = await sys.db.sql`select status, error_code from upscaler_jobs where id = ${job.id} and status in ('completed', 'failed')`
    return rows.length ? rows : null
  })
  t.match(settled, { status: 'failed', error_code: '805' }, 'the job ends as RunningHub says the task ended, not as the callback claimed')
})
