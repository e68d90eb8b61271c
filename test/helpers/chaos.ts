// The chaos run shared by test/chaos.test.ts (short, CI) and bench/soak.ts (long):
// a private PostgreSQL cluster, the RunningHub simulator with probabilistic
// faults of every class, several dispatcher processes and webhook servers
// (behind a round-robin forwarder), jobs inserted the whole time, processes
// SIGKILLed at random and restarted, Postgres restarted mid-run. Then the
// system drains and every guarantee is checked from the database and the
// simulator's ledger.
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../../src/db/migrate.ts'
import { freePorts, startCluster, type Cluster } from '../../src/localdb/cluster.ts'
import { startSimulator, type FaultRates, type Simulator } from '../../simulator/index.ts'
import {
  between,
  failedToStart,
  pick,
  seededRandom,
  sleep,
  startForwarder,
  Supervisor,
  type Forwarder,
  type Member,
  type TestLike,
} from './chaos-parts.ts'
import { jobTables, readyInputs, type JobTable } from './jobs.ts'
import { tasksPerJob, testKeys, testSecret } from './system.ts'

export type { TestLike } from './chaos-parts.ts'

type Sql = postgres.Sql

export interface ChaosOptions {
  seed: number
  /** Jobs inserted, evenly over the chaos phase. */
  jobs: number
  /** Length of the chaos phase (inserts, kills, the Postgres restart). */
  chaosMs: number
  /** The longest the drain may go without a job finishing (it ends in any case after six times that). */
  drainTimeoutMs: number
  dispatchers: number
  webhookServers: number
  accounts: number
  /** rhpool's slots per account. */
  slots: number
  /** The simulator's own per-key limit: higher, so it would accept an overload. */
  simConcurrency: number
  /** Task duration per tool at the simulator. */
  taskMs: Record<JobTable, number>
  /** Pause between two kills. */
  killEveryMs: [number, number]
  /** How long a killed process stays down. */
  downMs: [number, number]
  /** Postgres restarts, as fractions of the chaos phase (e.g. [0.45]). */
  postgresRestarts: number[]
  postgresDownMs: number
  /** Share of jobs a user cancels shortly after inserting them. */
  cancelRate: number
  faultRates: FaultRates
  /** Tool deadlines (seconds) set in rhpool.tools. */
  callbackDeadlineSeconds: number
  hardDeadlineSeconds: number
  workDir: string
  progress?: (line: string) => void
}

/** The defaults both the test and the soak start from. */
export function defaultChaosOptions(workDir: string): ChaosOptions {
  return {
    seed: 20240601,
    jobs: 900,
    chaosMs: 80_000,
    drainTimeoutMs: 45_000,
    dispatchers: 3,
    webhookServers: 2,
    accounts: 3,
    slots: 3,
    simConcurrency: 6,
    taskMs: { upscaler_jobs: 150, pose_changer_jobs: 250, veste_ai_jobs: 200, video_upscaler_jobs: 400 },
    killEveryMs: [2500, 6000],
    downMs: [500, 3000],
    postgresRestarts: [0.45],
    postgresDownMs: 2500,
    cancelRate: 0.03,
    faultRates: {
      // Request faults, drawn in this order on each create call (at most one applies).
      errorCode: 0.08,
      http5xx: { rate: 0.02, status: 503, body: 'json' },
      html: { rate: 0.02, status: 502 },
      slow: { rate: 0.02, delayMs: 400 },
      acceptThenHang: { rate: 0.02, hangMs: 3500 },
      acceptThenDrop: 0.01,
      // Task faults, each drawn independently for a created task.
      callbackDuplicate: { rate: 0.05, copies: 3, concurrent: true },
      callbackDelay: { rate: 0.04, delayMs: 1500 },
      callbackLost: 0.03,
      callbackEarly: 0.03,
      callbackOutOfOrder: { rate: 0.03, variant: 'second-end' },
      taskFailure: 0.03,
      forgetTask: 0.02,
      // Every class: full (421, 415), broken (802, 416: one-shot answers, the account
      // itself stays healthy, so the health probe brings it back), bad request (301,
      // 1505), transient (1000, 1012, 500).
      errorCodes: ['421', '415', '802', '416', '301', '1505', '1000', '1012', '500'],
    },
    callbackDeadlineSeconds: 6,
    hardDeadlineSeconds: 25,
    workDir,
  }
}

export interface KillRecord {
  at: number
  name: string
  role: 'dispatcher' | 'webhook'
  pid: number | undefined
  /** Jobs the dead dispatcher held under a lease (claimed or being submitted). */
  orphans: Array<{ job_table: string; job_id: string; status: string }>
  /** ms until none of them was held by the dead dispatcher any more. */
  releasedMs: number | null
  /** ms until every one was back in flight (claimed elsewhere, running) or finished. */
  settledMs: number | null
}

export interface ChaosRun {
  options: ChaosOptions
  sim: Simulator
  sql: Sql
  cluster: Cluster
  forwarder: Forwarder
  supervisor: Supervisor
  keys: string[]
  accountNames: string[]
  kills: KillRecord[]
  postgresRestarts: Array<{ at: number; downMs: number; firstEventAfterMs: number | null }>
  inserted: number
  insertErrors: number
  cancelsRequested: number
  /** Highest slots rows per account seen in any snapshot during the run. */
  dbMaxSlots: Map<string, number>
  /** Snapshots where a slot row belonged to a job not in flight (should never happen). */
  staleSlotSnapshots: string[]
  startedAt: number
  chaosEndedAt: number
  drainMs: number | null
  drained: boolean
  remaining: Record<string, number>
  stopCodes: Array<{ name: string; code: number | null }>
  /** Stops everything; the database folder is deleted unless keepDatabase (for a post-mortem). */
  close(options?: { keepDatabase?: boolean }): Promise<void>
}

const inFlight = ['claimed', 'submitting', 'outcome_unknown', 'running']

export async function runChaos(t: TestLike, options: ChaosOptions): Promise<ChaosRun> {
  const say = options.progress ?? (() => {})
  const random = seededRandom(options.seed)
  mkdirSync(options.workDir, { recursive: true })

  // --- Postgres: a private cluster, so it can be restarted without disturbing other tests.
  const cluster = await startCluster({ dataDir: join(options.workDir, 'pgdata'), fast: true })
  // Whatever has been started, stopped in reverse order: by close(), or by the teardown if setup failed.
  let closed = false
  let keepDatabase = false
  const cleanups: Array<() => Promise<unknown>> = [() => (keepDatabase ? cluster.stop('fast') : cluster.destroy())]
  const shutdown = async () => {
    if (closed) return
    closed = true
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {})
  }
  t.teardown(shutdown)
  const databaseUrl = await cluster.createDatabase('rhpool_chaos')
  await migrate(databaseUrl)
  const sql = postgres(databaseUrl, { max: 4, onnotice: () => {}, connect_timeout: 5, idle_timeout: 5 })
  cleanups.push(() => sql.end({ timeout: 2 }))
  await sql`update rhpool.tools set callback_deadline = make_interval(secs => ${options.callbackDeadlineSeconds}),
                                  hard_deadline = make_interval(secs => ${options.hardDeadlineSeconds})`
  await sql`update rhpool.settings set value = '2' where key = 'reconcile_interval_seconds'`
  // The claim lease is the database's (every dispatcher uses it): short, so a killed dispatcher's claims come back fast.
  await sql`update rhpool.settings set value = '5' where key = 'lease_seconds'`
  await sql`update rhpool.settings set value = '0.5' where key = 'cooldown_base_seconds'`
  await sql`update rhpool.settings set value = '4' where key = 'cooldown_max_seconds'`
  // Time runs ~20x faster here (tasks of a few hundred ms), and the injected 421s come while the
  // account has room: a learned limit probes back up in seconds, as it would in minutes for real.
  await sql`update rhpool.settings set value = '3' where key = 'limit_probe_after_seconds'`

  // --- RunningHub: three keys, each allowed more than rhpool's slots.
  const keys = testKeys.slice(0, options.accounts)
  const accountNames = keys.map((_, i) => (i === 0 ? 'primary' : `account_${i + 1}`))
  const appIds = await sql`select job_table, app from rhpool.tools`
  const taskDurationByApp: Record<string, number> = {}
  for (const row of appIds) {
    for (const id of Object.values((row.app as { apps: Record<string, string> }).apps))
      taskDurationByApp[id] = options.taskMs[row.job_table as JobTable]
  }
  const sim = await startSimulator({
    seed: options.seed,
    accounts: keys.map((apiKey) => ({ apiKey, concurrency: options.simConcurrency, balance: '100000' })),
    config: {
      taskDurationMs: 200,
      taskDurationByApp,
      callbackRetry: { attempts: 30, intervalMs: 500 },
      callbackTimeoutMs: 4000,
      faultRates: options.faultRates,
    },
  })
  cleanups.push(() => sim.close())

  // --- The webhook servers behind a forwarder; the dispatchers.
  const supervisor = new Supervisor(t, join(options.workDir, 'logs'))
  // Webhook and admin ports chosen together, all different.
  const ports = await freePorts(2 * options.webhookServers)
  const webhookPorts = ports.slice(0, options.webhookServers)
  const adminPorts = ports.slice(options.webhookServers)
  const forwarder = await startForwarder(() => webhookPorts.map((p) => `http://127.0.0.1:${p}`))
  cleanups.push(() => forwarder.close())
  const stopCodes: Array<{ name: string; code: number | null }> = []
  cleanups.push(async () => stopCodes.push(...(await supervisor.stopAll('SIGTERM'))))
  const common: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    WEBHOOK_SECRET: testSecret,
    // info: the supervisor tells a failed start from a crash by the process's own 'dispatcher started'.
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    // RHPOOL_CHAOS_CONFIRM=false runs the same chaos trusting callbacks, to compare (drain, throughput).
    ...(process.env.RHPOOL_CHAOS_CONFIRM ? { RHPOOL_CONFIRM_CALLBACKS: process.env.RHPOOL_CHAOS_CONFIRM } : {}),
  }
  const accountEnv = Object.fromEntries(
    keys.flatMap((key, i) => [
      [i === 0 ? 'RUNNINGHUB_API_KEY' : `RUNNINGHUB_API_KEY_${i + 1}`, key],
      [`RUNNINGHUB_SLOTS_${i + 1}`, String(options.slots)],
    ])
  )
  // The first webhook server has no RunningHub keys: what it holds waits for a dispatcher's round.
  // The others have them: each confirms what it holds itself, handing a callback for its attempt
  // to its own confirmer (killed with such a lease outstanding, the lease runs out and a
  // dispatcher takes it).
  webhookPorts.forEach((port, i) =>
    supervisor.add(`webhook-${i + 1}`, 'webhook', {
      ...common,
      ...(i === 0 ? {} : { ...accountEnv, RUNNINGHUB_BASE_URL: sim.url, RHPOOL_REQUEST_TIMEOUT_MS: '2000' }),
      RHPOOL_DISPATCHER: 'false',
      PORT: String(port),
      ADMIN_PORT: String(adminPorts[i]),
    })
  )
  for (let i = 0; i < options.dispatchers; i++) {
    supervisor.add(`dispatcher-${i + 1}`, 'dispatcher', {
      ...common,
      ...accountEnv,
      RHPOOL_HTTP: 'false',
      RUNNINGHUB_BASE_URL: sim.url,
      PUBLIC_BASE_URL: forwarder.url,
      RHPOOL_POLL_INTERVAL_MS: '250',
      RHPOOL_RETRY_BASE_MS: '100',
      RHPOOL_RETRY_MAX_MS: '1000',
      RHPOOL_REQUEST_TIMEOUT_MS: '2000',
      RHPOOL_MAINTENANCE_INTERVAL_MS: '1000',
      RHPOOL_MAX_CONCURRENT_SUBMISSIONS: '16',
    })
  }
  supervisor.reviveAll()
  await waitUntil('every account synced by a dispatcher', 30_000, async () => {
    const [row] = await sql`select count(*)::int as n from rhpool.account_status where enabled and key_holders > 0`
    return row!.n === options.accounts
  })

  const run: ChaosRun = {
    options,
    sim,
    sql,
    cluster,
    forwarder,
    supervisor,
    keys,
    accountNames,
    kills: [],
    postgresRestarts: [],
    inserted: 0,
    insertErrors: 0,
    cancelsRequested: 0,
    dbMaxSlots: new Map(accountNames.map((n) => [n, 0])),
    staleSlotSnapshots: [],
    startedAt: Date.now(),
    chaosEndedAt: 0,
    drainMs: null,
    drained: false,
    remaining: {},
    stopCodes,
    async close(closeOptions = {}) {
      keepDatabase = closeOptions.keepDatabase ?? false
      await shutdown()
    },
  }

  let postgresDown = false
  const chaosEnds = run.startedAt + options.chaosMs
  const chaosOn = () => Date.now() < chaosEnds

  // --- Inserting clients: jobs over the whole chaos phase; a few get cancelled by their user.
  const inserter = (async () => {
    const perMs = options.jobs / options.chaosMs
    while (run.inserted < options.jobs) {
      const due = Math.min(options.jobs, Math.ceil((Date.now() - run.startedAt) * perMs))
      while (run.inserted < due) {
        const table = pick(random, jobTables)
        const priority = random() < 0.1 ? pick(random, [-5, 5, 10]) : 0
        try {
          const [row] = await sql`insert into ${sql(table)} ${sql({ ...readyInputs[table], status: 'queued', priority })} returning id`
          run.inserted++
          if (random() < options.cancelRate) {
            const id = row!.id as string
            setTimeout(
              () => {
                sql`select rhpool.cancel_job(${table}, ${id})`.then(
                  () => run.cancelsRequested++,
                  () => {}
                )
              },
              between(random, 0, 3000)
            ).unref()
          }
        } catch {
          run.insertErrors++
          await sleep(200)
          break
        }
      }
      await sleep(50)
    }
  })()

  // --- The monitor: slot counts in every snapshot, and how fast a dead dispatcher's claims come back.
  const sample = async () => {
    if (postgresDown) return
    try {
      const rows = await sql`
        select s.account, count(*)::int as held,
               count(*) filter (where j.status is null or not (j.status = any (rhpool.in_flight_statuses())) or j.api_account is distinct from s.account)::int as stale
        from (select * from rhpool.runs where account is not null) s left join rhpool.jobs j on j.job_table = s.job_table and j.id = s.job_id
        group by s.account`
      for (const row of rows) {
        run.dbMaxSlots.set(row.account, Math.max(run.dbMaxSlots.get(row.account) ?? 0, row.held))
        if (row.stale > 0)
          run.staleSlotSnapshots.push(
            `${new Date().toISOString()} ${row.account}: ${row.stale} of ${row.held} slots held by jobs not in flight`
          )
      }
      for (const kill of run.kills) {
        if (kill.settledMs !== null || kill.orphans.length === 0) continue
        const states = await sql`
          select j.status, s.holder from unnest(${sql.array(kill.orphans.map((o) => o.job_table))}::text[], ${sql.array(kill.orphans.map((o) => o.job_id))}::uuid[]) as o(t, id)
          join rhpool.jobs j on j.job_table = o.t and j.id = o.id
          left join rhpool.runs s on s.job_table = o.t and s.job_id = o.id`
        const mine = (holder: string | null) => holder !== null && holder.split(':')[1] === String(kill.pid)
        const now = Date.now() - kill.at
        if (kill.releasedMs === null && states.every((s) => !mine(s.holder) || !['claimed', 'submitting'].includes(s.status)))
          kill.releasedMs = now
        if (
          states.every(
            (s) =>
              ['running', 'completed', 'failed', 'cancelled'].includes(s.status) ||
              (['claimed', 'submitting'].includes(s.status) && !mine(s.holder))
          )
        ) {
          kill.settledMs = now
          kill.releasedMs ??= now
        }
      }
    } catch {
      // The database is restarting: the next sample will do.
    }
  }
  let monitoring = true
  const monitor = (async () => {
    while (monitoring && !closed) {
      await sleep(250)
      await sample()
    }
  })()

  // --- The killer.
  const killer = (async () => {
    while (chaosOn()) {
      await sleep(between(random, ...options.killEveryMs))
      if (!chaosOn()) break
      const role = random() < 0.65 ? 'dispatcher' : 'webhook'
      const alive = supervisor.alive(role)
      if (alive.length < 2) continue // keep one of each kind alive
      let victim: Member = pick(random, alive)
      if (role === 'dispatcher' && random() < 0.5 && !postgresDown) {
        // Half the time, the one holding the most claims: a kill that matters.
        try {
          const held =
            await sql`select split_part(holder, ':', 2) as pid, count(*)::int as n from rhpool.runs where lease_expires_at is not null group by 1 order by 2 desc`
          const busiest = alive.find((m) => String(m.process?.child.pid) === held[0]?.pid)
          if (busiest) victim = busiest
        } catch {
          // keep the random choice
        }
      }
      const at = Date.now()
      const pid = await supervisor.kill(victim, 'SIGKILL')
      const kill: KillRecord = { at, name: victim.name, role, pid, orphans: [], releasedMs: null, settledMs: null }
      if (role === 'dispatcher' && !postgresDown) {
        try {
          kill.orphans =
            (await sql`select s.job_table, s.job_id::text, j.status from rhpool.runs s join rhpool.jobs j on j.job_table = s.job_table and j.id = s.job_id
                                    where s.lease_expires_at is not null and split_part(s.holder, ':', 2) = ${String(pid)}`) as unknown as KillRecord['orphans']
        } catch {
          // unknown: no recovery time for this one
        }
      }
      run.kills.push(kill)
      say(`kill ${victim.name} (pid ${pid})${kill.orphans.length ? `, ${kill.orphans.length} claims orphaned` : ''}`)
      const down = between(random, ...options.downMs)
      setTimeout(() => supervisor.restart(victim), down).unref()
    }
  })()

  // --- Postgres restarts.
  const restarter = (async () => {
    for (const fraction of [...options.postgresRestarts].sort()) {
      const at = run.startedAt + fraction * options.chaosMs
      while (Date.now() < at) await sleep(100)
      say('postgres: stopping (fast)')
      const stopAt = Date.now()
      postgresDown = true
      await cluster.stop('fast')
      await sleep(options.postgresDownMs)
      await cluster.start()
      postgresDown = false
      const record = { at: stopAt, downMs: Date.now() - stopAt, firstEventAfterMs: null as number | null }
      run.postgresRestarts.push(record)
      say(`postgres: back after ${record.downMs} ms`)
      const startedAgain = Date.now()
      void (async () => {
        while (!closed && Date.now() - startedAgain < 60_000) {
          try {
            const [row] =
              await sql`select count(*)::int as n from rhpool.job_events where occurred_at > to_timestamp(${startedAgain / 1000})`
            if (row!.n > 0) {
              record.firstEventAfterMs = Date.now() - startedAgain
              return
            }
          } catch {
            // still reconnecting
          }
          await sleep(100)
        }
      })()
    }
  })()

  const reporter = setInterval(() => {
    if (postgresDown) return
    sql`select status, count(*)::int as n from rhpool.jobs group by 1 order by 1`.then(
      (rows) =>
        say(
          `t+${Math.round((Date.now() - run.startedAt) / 1000)}s inserted ${run.inserted}: ${rows.map((r) => `${r.status} ${r.n}`).join(', ')}`
        ),
      () => {}
    )
  }, 10_000)
  reporter.unref()

  await Promise.all([inserter, killer, restarter])
  while (chaosOn()) await sleep(100)
  run.chaosEndedAt = Date.now()
  supervisor.reviveAll()
  say(
    `chaos over after ${Math.round((run.chaosEndedAt - run.startedAt) / 1000)} s: ${run.inserted} jobs, ${run.kills.length} kills; draining`
  )

  // --- Drain: nothing in flight, nothing claimable left in the queue. A busy machine drains
  // slowly, not wrongly: the drain fails when no job has finished for drainTimeoutMs (a
  // stall), and ends in any case after six times that.
  const drainCap = Date.now() + options.drainTimeoutMs * 6
  let lastProgressAt = Date.now()
  let finishedBefore = -1
  for (;;) {
    try {
      const [row] = await sql`
        select count(*) filter (where status = any (${sql.array(inFlight)}))::int as flying,
               count(*) filter (where status = 'queued')::int as queued,
               count(*) filter (where status in ('completed', 'failed', 'cancelled'))::int as finished
        from rhpool.jobs`
      if (row!.flying === 0 && row!.queued === 0) {
        run.drained = true
        break
      }
      if (row!.finished !== finishedBefore) {
        finishedBefore = row!.finished
        lastProgressAt = Date.now()
      }
    } catch {
      // reconnecting
    }
    if (Date.now() - lastProgressAt > options.drainTimeoutMs || Date.now() > drainCap) break
    await sleep(200)
  }
  run.drainMs = run.drained ? Date.now() - run.chaosEndedAt : null
  clearInterval(reporter)
  monitoring = false
  await monitor
  await sample()
  const left = await sql`select status, count(*)::int as n from rhpool.jobs group by 1`
  run.remaining = Object.fromEntries(left.map((r) => [r.status, r.n]))
  say(
    run.drained
      ? `drained in ${run.drainMs} ms`
      : `NOT drained (no job finished for ${options.drainTimeoutMs} ms, or six times that in all): ${JSON.stringify(run.remaining)}`
  )
  return run
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(200)
  }
}

// ---------------------------------------------------------------------------
// The verdict: every guarantee, checked from the database and the ledger.
// ---------------------------------------------------------------------------

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface ChaosFigures {
  jobs: number
  byStatus: Record<string, number>
  errorCodes: Record<string, number>
  requestFaults: Record<string, number>
  taskFaults: Record<string, number>
  faultsTotal: number
  kills: { dispatcher: number; webhook: number }
  restarts: number
  /** Processes that exited by themselves: at start while Postgres was down, or crashes. */
  startFailures: number
  crashes: number
  postgresRestarts: Array<{ downMs: number; firstEventAfterMs: number | null }>
  maxConcurrency: Array<{ account: string; ledger: number; db: number; limit: number }>
  tasksAtRunningHub: number
  jobsWithTwoTasks: number
  duplicateJobRefs: number
  callbackAttempts: number
  failedCallbackAttempts: number
  deliveries: Record<string, number>
  repairs: Record<string, number>
  recovery: { kills: number; orphans: number; releasedMs: number[]; settledMs: number[]; unsettled: number }
  forwarder: { requests: number; failovers: number; badGateway: number }
  chaosMs: number
  drainMs: number | null
  totalMs: number
}

const countBy = <T>(items: Iterable<T>, key: (item: T) => string | null): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const item of items) {
    const k = key(item)
    if (k !== null) out[k] = (out[k] ?? 0) + 1
  }
  return out
}

export async function verifyChaos(run: ChaosRun): Promise<{ checks: Check[]; figures: ChaosFigures }> {
  const { sql, sim, options } = run
  const checks: Check[] = []
  const check = (name: string, ok: boolean, detail = '') => checks.push({ name, ok, detail })
  const sample = (items: unknown[], n = 5) => JSON.stringify(items.slice(0, n)) + (items.length > n ? ` … (${items.length})` : '')

  const jobs = await sql`select job_table, id::text, status, api_account, task_id, error_code, error_message, attempts from rhpool.jobs`
  const byStatus = countBy(jobs, (j) => j.status)
  check(
    'the system drained',
    run.drained,
    `left: ${JSON.stringify(run.remaining)}; no job finished for ${options.drainTimeoutMs} ms, or six times that in all`
  )

  // Guarantee 3: nothing lost, nothing stuck.
  const stuck = jobs.filter((j) => !['completed', 'failed', 'cancelled', 'queued'].includes(j.status))
  // What RunningHub knows about a stuck job says why it is stuck.
  const atRunningHub = (j: (typeof jobs)[number]) => {
    const task = j.task_id ? sim.task(j.task_id) : undefined
    return task ? `${task.status}${task.faults.length ? ` with ${task.faults.join('+')}` : ''}` : 'no task'
  }
  check(
    'every job is terminal or queued',
    stuck.length === 0,
    sample(stuck.map((j) => `${j.job_table}/${j.id} ${j.status} on ${j.api_account}, task ${j.task_id} at RunningHub: ${atRunningHub(j)}`))
  )
  const queued = await sql`
    select 'upscaler_jobs' as t, id, error_message, not_before from upscaler_jobs where status = 'queued'
    union all select 'pose_changer_jobs', id, error_message, not_before from pose_changer_jobs where status = 'queued'
    union all select 'veste_ai_jobs', id, error_message, not_before from veste_ai_jobs where status = 'queued'
    union all select 'video_upscaler_jobs', id, error_message, not_before from video_upscaler_jobs where status = 'queued'`
  const [usable] =
    await sql`select count(*)::int as n from rhpool.accounts where enabled and (cooldown_until is null or cooldown_until <= now())`
  const unexplained = queued.filter((q) => q.error_message === null && q.not_before === null && usable!.n > 0)
  check('a job still queued has a reason', unexplained.length === 0, sample(unexplained))

  // Guarantee 1: never over a limit, as RunningHub itself counted it, and as the database saw it.
  const maxConcurrency = run.keys.map((key, i) => ({
    account: run.accountNames[i]!,
    ledger: sim.ledger.concurrency(key).maxConcurrency,
    db: run.dbMaxSlots.get(run.accountNames[i]!) ?? 0,
    limit: options.slots,
  }))
  for (const m of maxConcurrency) {
    check(
      `${m.account}: at most ${m.limit} tasks at once at RunningHub (measured ${m.ledger}; the simulator allowed ${options.simConcurrency})`,
      m.ledger <= m.limit
    )
    check(`${m.account}: at most ${m.limit} slot rows in any snapshot (measured ${m.db})`, m.db <= m.limit)
  }

  // Guarantee 4: never pay twice.
  const perJob = tasksPerJob(sim)
  const twice = [...perJob.entries()].filter(([, n]) => n > 1)
  check('no job got more than one task at RunningHub', twice.length === 0, sample(twice))
  const duplicateRefs = sim.ledger.duplicateJobRefs()
  check('no job reference got two tasks', duplicateRefs.size === 0, sample([...duplicateRefs.keys()]))
  // A task RunningHub created (and may charge for) belongs to a job that finished.
  const byKey = new Map(jobs.map((j) => [`${j.job_table}/${j.id}`, j]))
  const paidButOpen = [...perJob.keys()].filter((k) => !['completed', 'failed', 'cancelled'].includes(byKey.get(k)?.status))
  check(
    'every job with a task at RunningHub finished',
    paidButOpen.length === 0,
    sample(paidButOpen.map((k) => `${k}: ${byKey.get(k)?.status}`))
  )

  // Guarantee 5: exactly-once consequences.
  const events =
    await sql`select job_table, job_id::text, status, count(*) over (partition by job_table, job_id)::int as n from rhpool.job_events`
  const eventByJob = new Map(events.map((e) => [`${e.job_table}/${e.job_id}`, e]))
  const terminal = jobs.filter((j) => ['completed', 'failed', 'cancelled'].includes(j.status))
  const withoutEvent = terminal.filter((j) => !eventByJob.has(`${j.job_table}/${j.id}`))
  check('every terminal job has its event', withoutEvent.length === 0, sample(withoutEvent))
  const twoEvents = events.filter((e) => e.n > 1)
  check('no job has two events', twoEvents.length === 0, sample(twoEvents))
  const eventsForOpen = events.filter(
    (e) => !['completed', 'failed', 'cancelled'].includes(byKey.get(`${e.job_table}/${e.job_id}`)?.status)
  )
  check('no event for a job that is not finished', eventsForOpen.length === 0, sample(eventsForOpen))
  const eventMismatch = events.filter((e) => byKey.get(`${e.job_table}/${e.job_id}`)?.status !== e.status)
  check('each event says what the job ended as', eventMismatch.length === 0, sample(eventMismatch))
  // Late contradicting callbacks (second-end) change nothing: a completed job's task really succeeded.
  const contradicted = jobs.filter((j) => j.status === 'completed' && j.task_id && sim.task(j.task_id)?.status !== 'SUCCESS')
  check(
    "a completed job's task succeeded at RunningHub",
    contradicted.length === 0,
    sample(contradicted.map((j) => `${j.job_table}/${j.id}: ${sim.task(j.task_id)?.status}`))
  )

  // Slots: none leaked, none held by a finished job.
  const slots =
    await sql`select s.job_table, s.job_id::text, s.account, j.status from (select * from rhpool.runs where account is not null) s left join rhpool.jobs j on j.job_table = s.job_table and j.id = s.job_id`
  const leaked = slots.filter((s) => !inFlight.includes(s.status))
  check('no slot row belongs to a finished job', leaked.length === 0, sample(leaked))
  check('no slot left held after the drain', slots.length === 0, sample(slots))
  check('no snapshot ever showed a slot held by a job not in flight', run.staleSlotSnapshots.length === 0, sample(run.staleSlotSnapshots))

  // Failures say why.
  const failedWithoutCode = jobs.filter((j) => j.status === 'failed' && !j.error_code)
  check('every failed job carries an error_code', failedWithoutCode.length === 0, sample(failedWithoutCode))

  // Recovery is bounded: every dead dispatcher's claims came back.
  const unsettled = run.kills.filter((k) => k.orphans.length > 0 && k.settledMs === null)
  check(
    "every killed dispatcher's claims came back",
    unsettled.length === 0,
    sample(unsettled.map((k) => ({ name: k.name, pid: k.pid, orphans: k.orphans.length })))
  )

  // A running process survives a Postgres restart (only one started while it was down may give up and be restarted).
  const crashes = run.supervisor.exits.filter((e) => !e.expected && !failedToStart(e))
  check(
    'no rhpool process crashed',
    crashes.length === 0,
    sample(crashes.map((e) => ({ name: e.name, code: e.code, tail: e.tail.slice(-300) })))
  )

  // Figures.
  const submissions = sim.ledger.submissions
  const requestFaults = countBy(submissions, (s) =>
    s.fault === null ? null : s.fault === 'errorCode' ? `errorCode ${s.outcome}` : s.fault
  )
  const taskFaults = countBy(
    sim.ledger.tasks.flatMap((task) => task.faults),
    (f) => f
  )
  const callbacks = sim.ledger.callbacks
  const deliveries = Object.fromEntries(
    (
      await sql`select case when detail like 'handed to %' then outcome || ' (handed over)' else outcome end as outcome, count(*)::int as n
                from rhpool.webhook_deliveries group by 1 order by 1`
    ).map((r) => [r.outcome, r.n])
  )
  const repairs = Object.fromEntries(
    (await sql`select action, count(*)::int as n from rhpool.maintenance_log group by 1 order by 1`).map((r) => [r.action, r.n])
  )
  const dispatcherKills = run.kills.filter((k) => k.role === 'dispatcher')
  const figures: ChaosFigures = {
    jobs: jobs.length,
    byStatus,
    errorCodes: countBy(
      jobs.filter((j) => j.status === 'failed'),
      (j) => j.error_code
    ),
    requestFaults,
    taskFaults,
    faultsTotal: Object.values(requestFaults).reduce((a, b) => a + b, 0) + Object.values(taskFaults).reduce((a, b) => a + b, 0),
    kills: { dispatcher: dispatcherKills.length, webhook: run.kills.length - dispatcherKills.length },
    restarts: [...run.supervisor.members.values()].reduce((n, m) => n + m.generation - 1, 0),
    startFailures: run.supervisor.exits.filter(failedToStart).length,
    crashes: crashes.length,
    postgresRestarts: run.postgresRestarts.map(({ downMs, firstEventAfterMs }) => ({ downMs, firstEventAfterMs })),
    maxConcurrency,
    tasksAtRunningHub: sim.ledger.tasks.length,
    jobsWithTwoTasks: twice.length,
    duplicateJobRefs: duplicateRefs.size,
    callbackAttempts: callbacks.length,
    failedCallbackAttempts: callbacks.filter((c) => c.status === null || c.status < 200 || c.status >= 300).length,
    deliveries,
    repairs,
    recovery: {
      kills: dispatcherKills.filter((k) => k.orphans.length > 0).length,
      orphans: dispatcherKills.reduce((n, k) => n + k.orphans.length, 0),
      releasedMs: dispatcherKills.flatMap((k) => (k.orphans.length && k.releasedMs !== null ? [k.releasedMs] : [])).sort((a, b) => a - b),
      settledMs: dispatcherKills.flatMap((k) => (k.orphans.length && k.settledMs !== null ? [k.settledMs] : [])).sort((a, b) => a - b),
      unsettled: unsettled.length,
    },
    forwarder: { ...run.forwarder.stats },
    chaosMs: run.chaosEndedAt - run.startedAt,
    drainMs: run.drainMs,
    totalMs: Date.now() - run.startedAt,
  }
  return { checks, figures }
}

const seconds = (ms: number | null) => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(1)}s`)
const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : null

/** One line for t.comment. */
export function figureLine(f: ChaosFigures): string {
  return [
    `jobs ${f.jobs} (${Object.entries(f.byStatus)
      .map(([s, n]) => `${s} ${n}`)
      .join(', ')})`,
    `faults ${f.faultsTotal}`,
    `kills ${f.kills.dispatcher} dispatcher + ${f.kills.webhook} webhook, ${f.restarts} restarts (${f.startFailures} failed starts while postgres was down), ${f.crashes} crashes`,
    `postgres restarts ${f.postgresRestarts.length} (down ${f.postgresRestarts.map((p) => seconds(p.downMs)).join('/')})`,
    `max concurrency ${f.maxConcurrency.map((m) => `${m.account} ${m.ledger}/${m.limit}`).join(', ')}`,
    `duplicates: ${f.jobsWithTwoTasks} jobs with 2 tasks, ${f.deliveries.duplicate ?? 0} duplicate callbacks absorbed`,
    `callbacks held ${f.deliveries.unconfirmed ?? 0}, handed over ${f.deliveries['unconfirmed (handed over)'] ?? 0}`,
    `claims back in flight after a kill: median ${seconds(percentile(f.recovery.settledMs, 0.5))}, max ${seconds(percentile(f.recovery.settledMs, 1))}`,
    `drain ${seconds(f.drainMs)}`,
  ].join(' | ')
}

/** The long report for the soak. */
export function figureReport(f: ChaosFigures): string {
  const table = (o: Record<string, number>) =>
    Object.entries(o)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || '—'
  const r = f.recovery
  return [
    `jobs                 ${f.jobs}: ${table(f.byStatus)}`,
    `failed by code       ${table(f.errorCodes)}`,
    `faults injected      ${f.faultsTotal}`,
    `  on create calls    ${table(f.requestFaults)}`,
    `  on tasks           ${table(f.taskFaults)}`,
    `tasks at RunningHub  ${f.tasksAtRunningHub}`,
    `kills (SIGKILL)      ${f.kills.dispatcher} dispatchers, ${f.kills.webhook} webhook servers; ${f.restarts} restarts; ${f.startFailures} starts failed while postgres was down; ${f.crashes} crashes`,
    `postgres restarts    ${f.postgresRestarts.map((p) => `down ${seconds(p.downMs)}, first job finished ${seconds(p.firstEventAfterMs)} after it came back`).join('; ') || '—'}`,
    `max concurrency      ${f.maxConcurrency.map((m) => `${m.account}: RunningHub saw ${m.ledger}, database ${m.db}, limit ${m.limit}`).join('; ')}`,
    `duplicates           ${f.jobsWithTwoTasks} jobs with >1 task, ${f.duplicateJobRefs} job refs with >1 task; ${f.deliveries.duplicate ?? 0} duplicate callbacks absorbed`,
    `callbacks            ${f.callbackAttempts} attempts, ${f.failedCallbackAttempts} failed (receiver dead, database down, 5xx) and resent`,
    `webhook deliveries   ${table(f.deliveries)}`,
    `forwarder            ${f.forwarder.requests} requests, ${f.forwarder.failovers} failovers to the other server, ${f.forwarder.badGateway} answered 502`,
    `repairs              ${table(f.repairs)}`,
    `dispatcher kills     ${r.kills} left claims behind (${r.orphans} claims)`,
    `  released after     median ${seconds(percentile(r.releasedMs, 0.5))}, p90 ${seconds(percentile(r.releasedMs, 0.9))}, max ${seconds(percentile(r.releasedMs, 1))}`,
    `  back in flight     median ${seconds(percentile(r.settledMs, 0.5))}, p90 ${seconds(percentile(r.settledMs, 0.9))}, max ${seconds(percentile(r.settledMs, 1))}; ${r.unsettled} never`,
    `time                 chaos ${seconds(f.chaosMs)}, drain ${seconds(f.drainMs)}, total ${seconds(f.totalMs)}`,
  ].join('\n')
}

/** Removes the run's folder (logs, database) unless told to keep it for a post-mortem. */
export function removeWorkDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}
