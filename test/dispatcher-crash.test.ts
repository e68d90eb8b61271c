// A dispatcher killed with SIGKILL at any point loses no job and leaks no slot;
// SIGTERM drains. Dispatchers run as real processes here, so they can die.
import t from 'tap'
import { insertJob, markUpload } from './helpers/jobs.ts'
import { spawnRhpool, startSystem, tasksPerJob } from './helpers/system.ts'
import { loadConfig } from '../src/config/index.ts'
import { createLogger } from '../src/log.ts'
import { startService } from '../src/service.ts'

// The lease is the database's setting (lease_seconds), set short by each test's startSystem.
const fast = { RHPOOL_MAINTENANCE_INTERVAL_MS: '1000' }

/** The webhook server alone, in this process (the dispatchers are the ones being killed). */
async function webhookOnly(t: { teardown(fn: () => unknown): void }, sys: Awaited<ReturnType<typeof startSystem>>, withDispatcher = false) {
  const service = await startService(loadConfig({ ...sys.env, ...fast, RHPOOL_DISPATCHER: String(withDispatcher) }), createLogger('silent'))
  t.teardown(() => service.stop())
  return service
}

t.test(
  'killed while uploading inputs (claimed, nothing sent): the lease returns the job and another dispatcher runs it once',
  async (t) => {
    const sys = await startSystem(t, { slots: [3], inProcess: false, settings: { lease_seconds: '5' } })
    await markUpload(sys.db.sql, 'upscaler_jobs')
    const doomed = spawnRhpool(t, { ...sys.env, ...fast, RHPOOL_HTTP: 'false' })
    const id = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/slow/1500/in.png` } })
    await sys.waitFor('the dispatcher to claim and start downloading', async () => sys.files.requests.some((r) => r.includes('/slow/')))
    await doomed.kill('SIGKILL')
    const [held] = await sys.db.sql`select status from upscaler_jobs where id = ${id}`
    t.equal(held!.status, 'claimed', 'the dead dispatcher left its claim behind')

    await webhookOnly(t, sys, true)
    await sys.waitFor(
      'the job to complete',
      async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${id} and status = 'completed'`).length > 0,
      30_000
    )
    t.equal(tasksPerJob(sys.sim).get(`upscaler_jobs/${id}`), 1, 'one task at RunningHub')
    const repairs = await sys.db.sql`select action from rhpool.maintenance_log where job_id = ${id}`
    t.same(
      repairs.map((r) => r.action),
      ['lease_expired_requeued'],
      'the recovery is on record'
    )
    const [done] = await sys.db.sql`select attempts, error_code from upscaler_jobs where id = ${id}`
    t.same(
      done,
      { attempts: 2, error_code: null },
      'the crashed claim counted an attempt (so a crash-looping input runs out), the completion cleared its error'
    )
    const [slots] = await sys.db.sql`select count(*)::int as n from rhpool.runs where account is not null`
    t.equal(slots!.n, 0, 'no slot leaked')
  }
)

t.test('killed after RunningHub accepted but before the task id was saved: the signed callback still finds the job', async (t) => {
  const sys = await startSystem(t, { slots: [3], inProcess: false, settings: { lease_seconds: '5' }, sim: { taskDurationMs: 1500 } })
  await webhookOnly(t, sys)
  const doomed = spawnRhpool(t, { ...sys.env, ...fast, RHPOOL_HTTP: 'false', RHPOOL_REQUEST_TIMEOUT_MS: '30000' })
  sys.sim.inject({ kind: 'acceptThenHang' })
  const id = await insertJob(sys.db.sql, 'pose_changer_jobs')
  await sys.waitFor('RunningHub to accept the task', async () => sys.sim.ledger.tasks.length > 0)
  await doomed.kill('SIGKILL')
  const [before] = await sys.db.sql`select status, task_id from pose_changer_jobs where id = ${id}`
  t.same(before, { status: 'submitting', task_id: null }, 'the task id was never saved')
  await sys.waitFor(
    'the callback to complete the job',
    async () => (await sys.db.sql`select 1 from pose_changer_jobs where id = ${id} and status = 'completed'`).length > 0
  )
  const [after] = await sys.db.sql`select task_id, attempts from pose_changer_jobs where id = ${id}`
  t.equal(after!.task_id, sys.sim.ledger.tasks[0]!.taskId, 'the task id came with the callback')
  t.equal(sys.sim.ledger.submissions.length, 1, 'never resubmitted')
  const [events] = await sys.db.sql`select count(*)::int as n from rhpool.job_events`
  t.equal(events!.n, 1)
})

t.test(
  'killed between send and record, and the callback is lost: unknown outcome, failed within the bound, never resubmitted',
  async (t) => {
    const sys = await startSystem(t, { slots: [3], inProcess: false, settings: { lease_seconds: '5' }, sim: { taskDurationMs: 200 } })
    await sys.db.sql`update rhpool.tools set callback_deadline = interval '3 seconds'`
    // A submission's lease is its request timeout plus 5 s: here 3 + 5 = 8 s.
    const doomed = spawnRhpool(t, { ...sys.env, ...fast, RHPOOL_HTTP: 'false', RHPOOL_REQUEST_TIMEOUT_MS: '3000' })
    sys.sim.inject({ kind: 'acceptThenHang' })
    sys.sim.inject({ kind: 'callbackLost' })
    const id = await insertJob(sys.db.sql, 'veste_ai_jobs')
    await sys.waitFor('RunningHub to accept the task', async () => sys.sim.ledger.tasks.length > 0)
    await doomed.kill('SIGKILL')
    const started = Date.now()
    await webhookOnly(t, sys, true)
    // Recovery is bounded: submission lease (8 s) + callback deadline (3 s) + a maintenance round
    // (1 s) is 12 s on an idle machine; the bound allows for a busy one.
    await sys.waitFor(
      'the job to fail',
      async () => (await sys.db.sql`select 1 from veste_ai_jobs where id = ${id} and status = 'failed'`).length > 0,
      45_000
    )
    const seconds = (Date.now() - started) / 1000
    const [job] = await sys.db.sql`select error_code, attempts from veste_ai_jobs where id = ${id}`
    t.same(job, { error_code: 'SUBMISSION_OUTCOME_UNKNOWN', attempts: 1 })
    t.comment(`settled ${seconds.toFixed(1)} s after the kill`)
    t.equal(sys.sim.ledger.submissions.length, 1, 'never resubmitted (it could have been paid for)')
    const actions = (await sys.db.sql`select action from rhpool.maintenance_log where job_id = ${id} order by id`).map((r) => r.action)
    t.same(actions, ['lease_expired_outcome_unknown', 'unknown_outcome_failed'])
    const [event] = await sys.db.sql`select status, error_code from rhpool.job_events where job_id = ${id}`
    t.same(event, { status: 'failed', error_code: 'SUBMISSION_OUTCOME_UNKNOWN' }, 'the product gets its event to refund on')
  }
)

t.test('SIGTERM drains: calls on the wire finish and are recorded, unsent claims go back to the queue', async (t) => {
  const sys = await startSystem(t, { slots: [3], inProcess: false, settings: { lease_seconds: '5' }, sim: { taskDurationMs: 200 } })
  await webhookOnly(t, sys)
  await markUpload(sys.db.sql, 'upscaler_jobs')
  const dispatcher = spawnRhpool(t, { ...sys.env, ...fast, RHPOOL_HTTP: 'false' })
  sys.sim.inject({ kind: 'slow', delayMs: 1500, processIfClientGone: true })
  const sending = await insertJob(sys.db.sql, 'upscaler_jobs', { createdAt: new Date(Date.now() - 1000) })
  const uploading = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: `${sys.files.url}/slow/1500/in.png` } })
  await sys.waitFor('one submission on the wire and one upload under way', async () => {
    const [row] = await sys.db
      .sql`select count(*) filter (where status = 'submitting')::int as s, count(*) filter (where status = 'claimed')::int as c from upscaler_jobs`
    return row!.s === 1 && row!.c === 1 && sys.files.requests.some((r) => r.includes('/slow/'))
  })
  const code = await dispatcher.kill('SIGTERM')
  t.equal(code, 0, 'clean exit')
  const rows = await sys.db.sql`select id, status, attempts, task_id from upscaler_jobs`
  const byId = new Map(rows.map((r) => [r.id, r]))
  t.match(byId.get(sending), { attempts: 1, task_id: /^\d+$/ }, 'the call on the wire finished and its task id was saved')
  t.ok(['running', 'completed'].includes(byId.get(sending)!.status as string))
  t.match(byId.get(uploading), { status: 'queued', attempts: 0, task_id: null }, 'the unsent claim went back to the queue')
  const [slots] = await sys.db.sql`select count(*)::int as n from rhpool.runs where account is not null and job_id = ${uploading}`
  t.equal(slots!.n, 0, 'its slot was freed')
})
