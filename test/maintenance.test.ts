// Self-healing, with each failure made to happen for real, recovered on its
// own within the documented bound — on the dispatcher's timer (no pg_cron in
// these databases) and, in the last test, from pg_cron itself.
import t from 'tap'
import { join } from 'node:path'
import postgres from 'postgres'
import { claim, insertJob, jobStatus, setAccounts } from './helpers/jobs.ts'
import { freshDatabase } from './helpers/db.ts'
import { startSystem, testKeys } from './helpers/system.ts'
import { tempFolder } from './helpers/temp-folder.ts'
import { startCluster } from '../src/localdb/cluster.ts'
import { migrate } from '../src/db/migrate.ts'

const fastReconcile = async (sys: Awaited<ReturnType<typeof startSystem>>, deadlines = { callback: '1 second', hard: '1 hour' }) => {
  await sys.db.sql`update rhpool.tools set callback_deadline = ${deadlines.callback}::interval, hard_deadline = ${deadlines.hard}::interval`
  await sys.db.sql`update rhpool.settings set value = '1' where key = 'reconcile_interval_seconds'`
}

const statusOf = async (sys: Awaited<ReturnType<typeof startSystem>>, id: string) =>
  (await sys.db.sql`select status, error_code from rhpool.jobs where id = ${id}`)[0]

t.test("a lost callback: the overdue job is asked about with its account's key and completed as if it had come", async (t) => {
  const sys = await startSystem(t, { slots: [1, 1], sim: { taskDurationMs: 200 } })
  await fastReconcile(sys)
  sys.sim.inject({ kind: 'callbackLost', times: 2 })
  const a = await insertJob(sys.db.sql, 'upscaler_jobs')
  const b = await insertJob(sys.db.sql, 'veste_ai_jobs')
  const started = Date.now()
  await sys.waitFor(
    'both completed without callbacks',
    async () => (await statusOf(sys, a))!.status === 'completed' && (await statusOf(sys, b))!.status === 'completed'
  )
  t.ok(Date.now() - started < 1000 + 1000 + 3000, 'within callback deadline + reconcile interval + a round')
  const repairs = await sys.db.sql`select action, account from rhpool.maintenance_log order by id`
  t.same(
    repairs.map((r) => r.action),
    ['reconciled_applied', 'reconciled_applied']
  )
  const [job] = await sys.db.sql`select output_url, rh_usage from upscaler_jobs where id = ${a}`
  t.match(job, { output_url: /^https:/, rh_usage: { thirdPartyConsumeMoney: /\d/ } }, 'outputs and cost from the query answer')
})

t.test('RunningHub forgets a task: the job fails TASK_LOST (with its terminal event)', async (t) => {
  const sys = await startSystem(t, { slots: [1], sim: { taskDurationMs: 60_000 } })
  await fastReconcile(sys)
  const id = await insertJob(sys.db.sql, 'pose_changer_jobs')
  const [running] = await sys.waitFor('running', async () => {
    const rows = await sys.db.sql`select task_id from pose_changer_jobs where id = ${id} and status = 'running'`
    return rows.length ? rows : null
  })
  sys.sim.forget(running!.task_id)
  await sys.waitFor('the job to fail', async () => (await statusOf(sys, id))!.status === 'failed')
  t.same(await statusOf(sys, id), { status: 'failed', error_code: 'TASK_LOST' })
  const [event] = await sys.db.sql`select status from rhpool.job_events where job_id = ${id}`
  t.equal(event!.status, 'failed')
})

t.test('stuck past the hard deadline: cancelled at RunningHub and failed; age counts from submission', async (t) => {
  // cancelStatus 'CANCEL' (no official source shows it) makes the cancel visible as such.
  const sys = await startSystem(t, { slots: [1], sim: { taskDurationMs: 60_000, cancelStatus: 'CANCEL' } })
  await fastReconcile(sys, { callback: '1 second', hard: '3 seconds' })
  // Waiting in the queue for a long time is not being stuck.
  const id = await insertJob(sys.db.sql, 'video_upscaler_jobs', { createdAt: new Date(Date.now() - 24 * 3600 * 1000) })
  const [running] = await sys.waitFor('running', async () => {
    const rows = await sys.db.sql`select task_id, submitted_at from video_upscaler_jobs where id = ${id} and status = 'running'`
    return rows.length ? rows : null
  })
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal((await statusOf(sys, id))!.status, 'running', 'a day in the queue did not make it overdue: still running 1.5 s after submission')
  await sys.waitFor('the job to be failed', async () => (await statusOf(sys, id))!.status === 'failed', 30_000)
  t.same(await statusOf(sys, id), { status: 'failed', error_code: 'DEADLINE_EXCEEDED' })
  t.equal(sys.sim.task(running!.task_id)?.status, 'CANCEL', "cancelled at RunningHub with the account's key")
})

t.test('an account runs out of balance and comes back', async (t) => {
  const sys = await startSystem(t, { slots: [2, 2], sim: { taskDurationMs: 100 } })
  sys.sim.setBalance(testKeys[0]!, 0)
  const first = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor('the job to complete on the other account', async () => (await statusOf(sys, first))!.status === 'completed')
  const [primary] = await sys.db.sql`select enabled, disabled_reason from rhpool.accounts where name = 'primary'`
  t.match(primary, { enabled: false, disabled_reason: /^416: / }, 'primary left rotation with the reason')
  sys.sim.setBalance(testKeys[0]!, '50.00')
  await sys.waitFor(
    'primary back in rotation',
    async () => (await sys.db.sql`select enabled from rhpool.accounts where name = 'primary'`)[0]!.enabled === true,
    15_000
  )
  const [health] = await sys.db.sql`select remain_money::text, reported_concurrency from rhpool.accounts where name = 'primary'`
  t.same(health, { remain_money: '50.00', reported_concurrency: 2 }, "balance and RunningHub's own limit are visible")
  const log = await sys.db.sql`select action from rhpool.maintenance_log where account = 'primary'`
  t.same(
    log.map((l) => l.action),
    ['account_reenabled']
  )

  await sys.db.sql`update rhpool.settings set value = '20' where key = 'min_balance'`
  sys.sim.setBalance(testKeys[0]!, '10.00')
  await sys.waitFor(
    'primary out of rotation for a low balance',
    async () => {
      const [row] = await sys.db.sql`select enabled, disabled_reason from rhpool.accounts where name = 'primary'`
      return row!.enabled === false && /below the minimum 20/.test(row!.disabled_reason)
    },
    15_000
  )
  t.pass('a low balance takes the account out before RunningHub refuses work')
  const [taken] = await sys.db
    .sql`select detail from rhpool.maintenance_log where account = 'primary' and action = 'account_low_balance_disabled'`
  t.same(taken, { detail: '10.00' }, 'and the repair log says so, with the balance as RunningHub sent it')
})

t.test('an account disabled by an answer comes back when it works again, though queue/status never answers', async (t) => {
  const sys = await startSystem(t, { slots: [2, 2], sim: { taskDurationMs: 100, queueStatus: 'notFound' } })
  const primary = async () =>
    (await sys.db.sql`select enabled, disabled_reason, reported_concurrency from rhpool.accounts where name = 'primary'`)[0]!
  sys.sim.setBalance(testKeys[0]!, 0)
  const first = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor('the job to complete on the other account', async () => (await statusOf(sys, first))!.status === 'completed')
  t.match(await primary(), { enabled: false, disabled_reason: /^416: / }, 'no balance: out of rotation')
  sys.sim.setBalance(testKeys[0]!, '50.00')
  await sys.waitFor('primary back in rotation (queue/status answers 404)', async () => (await primary()).enabled, 15_000)
  t.equal((await primary()).reported_concurrency, null, 'nothing was reported: the endpoint never answered')

  // Revoked, then restored, with queue/status answering an error instead.
  sys.sim.configure({ queueStatus: 'error' })
  sys.sim.removeAccount(testKeys[0]!)
  const second = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor('the second job to complete', async () => (await statusOf(sys, second))!.status === 'completed')
  t.match(await primary(), { enabled: false, disabled_reason: /^802: / }, 'bad key: out of rotation')
  sys.sim.addAccount(testKeys[0]!, { concurrency: 2 })
  await sys.waitFor('primary back in rotation (queue/status answers an error)', async () => (await primary()).enabled, 15_000)
  const log = await sys.db.sql`select action from rhpool.maintenance_log where account = 'primary' order by id`
  t.same(
    log.map((l) => l.action),
    ['account_reenabled', 'account_reenabled']
  )
})

t.test('kept callbacks are applied once their job catches up; there is no drift to repair; history is pruned', async (t) => {
  const sys = await startSystem(t, { slots: [2], inProcess: false })
  const { sql } = sys.db
  await setAccounts(sql, [{ name: 'primary', slots: 2 }])
  const id = await insertJob(sql, 'upscaler_jobs')
  const callback = { status: 'SUCCESS', outputs: [{ url: 'https://cdn.example/k.png' }], usage: { consumeMoney: '0.07' } }
  // The callback arrives while the job is still only queued (for the database, RunningHub has nothing yet).
  const [kept] =
    await sql`select rhpool.apply_callback('upscaler_jobs', ${id}, 1, '1900000000000000999', ${sql.json(callback)}, '{}') as outcome`
  t.equal(kept!.outcome, 'kept')
  const [claimed] = await sql`select * from rhpool.claim_account_slot(1, 'h')`
  await sql`select rhpool.begin_submission('upscaler_jobs', ${claimed!.job_id}, ${claimed!.claim_token}, 30)`
  const [round] = await sql`select rhpool.run_maintenance() as summary`
  t.match(round!.summary, { keptCallbacksApplied: 1 })
  const [job] = await sql`select status, task_id, output_url from upscaler_jobs where id = ${id}`
  t.same(job, { status: 'completed', task_id: '1900000000000000999', output_url: 'https://cdn.example/k.png' }, 'never dropped')

  // The state has one owner (rhpool.runs); the product's status is written in the same
  // transaction by each transition, and a hand-written one is refused: nothing to drift.
  const other = await insertJob(sql, 'veste_ai_jobs')
  await t.rejects(
    sql`update veste_ai_jobs set status = 'running', api_account = 'primary' where id = ${other}`,
    /cannot move from queued to running by hand/
  )
  const [round2] = await sql`select rhpool.run_maintenance() as summary`
  t.notOk('slotDriftRepaired' in round2!.summary, 'maintenance has no drift repair')

  await sql`update rhpool.settings set value = '1' where key = 'retention_days'`
  await sql`update rhpool.webhook_deliveries set received_at = now() - interval '2 days', resolved_at = now()`
  await sql`update rhpool.job_events set processed_at = now() - interval '2 days'`
  const [pruned] = await sql`select rhpool.run_maintenance() as summary`
  t.ok(pruned!.summary.historyPruned >= 2, `pruned ${pruned!.summary.historyPruned} rows of history`)
  const [still] = await sql`select count(*)::int as n from upscaler_jobs where id = ${id}`
  t.equal(still!.n, 1, "the job row itself is the product's and stays")
})

t.test(
  'an expired claim (a crash before sending, say during an input transfer) counts an attempt: a crash-looping input fails',
  async (t) => {
    const { sql } = await freshDatabase(t)
    await setAccounts(sql, [{ name: 'primary', slots: 1 }])
    const id = await insertJob(sql, 'upscaler_jobs', { extra: { max_attempts: 2 } })
    const crash = async () => {
      const [claimed] = await claim(sql, 1, undefined, 'dying-dispatcher')
      t.equal(claimed?.job_id, id, 'claimed')
      await sql`update rhpool.runs set lease_expires_at = now() - interval '1 second' where lease_expires_at is not null`
      return (await sql`select rhpool.expire_leases() as n`)[0]!.n
    }
    t.equal(await crash(), 1)
    t.match(
      await jobStatus(sql, 'upscaler_jobs', id),
      { status: 'queued', attempts: 1, error_code: 'LEASE_EXPIRED' },
      'back in the queue, one attempt spent'
    )
    t.equal(await crash(), 1)
    t.match(
      await jobStatus(sql, 'upscaler_jobs', id),
      { status: 'failed', attempts: 2, error_code: 'LEASE_EXPIRED', error_message: /gave up after 2 attempts/ },
      'the second crash used the attempts up: failed, not claimed again forever'
    )
    const [slots] = await sql`select count(*)::int as n from rhpool.runs where account is not null`
    t.equal(slots!.n, 0, 'no slot held')
    const [event] = await sql`select status, error_code from rhpool.job_events where job_id = ${id}`
    t.same(event, { status: 'failed', error_code: 'LEASE_EXPIRED' }, 'the product gets its terminal event')
    const repairs = await sql`select action from rhpool.maintenance_log where job_id = ${id} order by id`
    t.same(
      repairs.map((r) => r.action),
      ['lease_expired_requeued', 'lease_expired_failed'],
      'both on record'
    )
  }
)

t.test('several maintenance rounds at once do no harm', async (t) => {
  const sys = await startSystem(t, { slots: [3], inProcess: false })
  const results = await Promise.all(Array.from({ length: 8 }, () => sys.db.sql`select rhpool.run_maintenance() as s`))
  const skipped = results.filter((r) => r[0]!.s.skipped).length
  t.ok(skipped < 8, `${8 - skipped} ran, ${skipped} skipped because another round was running`)
})

t.test(
  'the pg_cron path: the migration schedules maintenance and the claim round, and pg_cron runs them',
  { timeout: 260_000 },
  async (t) => {
    const folder = tempFolder(t, 'rhpool-cron-', { readableByOthers: true })
    const cluster = await startCluster({ dataDir: join(folder, 'pg'), fast: true, cronDatabase: 'rhpool' })
    t.teardown(() => cluster.destroy())
    const url = await cluster.createDatabase('rhpool')
    await migrate(url)
    const sql = postgres(url, { max: 2, onnotice: () => {} })
    t.teardown(() => sql.end({ timeout: 2 }))
    const [job] = await sql`select schedule, command, active from cron.job where jobname = 'rhpool-maintenance'`
    t.same(job, { schedule: '* * * * *', command: 'select rhpool.run_maintenance()', active: true }, 'every minute on pg_cron 1.4')
    const [round] = await sql`select schedule, command, active from cron.job where jobname = 'rhpool-claim-round'`
    t.same(round, { schedule: '* * * * *', command: 'select rhpool.claim_round()', active: true }, 'and the claim round')

    // A claim whose dispatcher died: only maintenance can give it back.
    await setAccounts(sql as never, [{ name: 'primary', slots: 1 }])
    const [inserted] = await sql`insert into upscaler_jobs (input_file_name) values ('in.png') returning id`
    await sql`select * from rhpool.claim_account_slot(1, 'dead-dispatcher', 5)`
    await sql`update rhpool.runs set lease_expires_at = now() - interval '1 second' where lease_expires_at is not null`
    // pg_cron fires both each minute: maintenance gives the claim back, then (at the same
    // tick or the next) the claim round gives the job its account again, holder-less, for a
    // dispatcher to adopt. Observed, not timed: up to three ticks on a busy machine.
    const deadline = Date.now() + 200_000
    let state: Record<string, unknown> | undefined
    while (Date.now() < deadline) {
      state = (
        await sql`
      select r.status, r.holder, r.account, (select count(*)::int from rhpool.maintenance_log l where l.action = 'lease_expired_requeued') as requeued
      from rhpool.runs r where r.job_id = ${inserted!.id}`
      )[0]
      if (state?.requeued === 1 && state.status === 'claimed' && state.holder === null) break
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    t.same(
      state,
      { status: 'claimed', holder: null, account: 'primary', requeued: 1 },
      'pg_cron returned the expired claim to the queue, and its claim round claimed the job again with no dispatcher awake'
    )
    const failedRuns = await sql`select command, status, return_message from cron.job_run_details where status <> 'succeeded'`
    t.same(failedRuns, [], 'every pg_cron run succeeded')
    const [product] = await sql`select status, api_account from upscaler_jobs where id = ${inserted!.id}`
    t.same(product, { status: 'claimed', api_account: 'primary' }, 'the product row shows its account')
  }
)
