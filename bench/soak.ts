// The chaos scenario of test/chaos.test.ts, longer, in one command:
//
//   npx tsx bench/soak.ts --minutes 10 [--jobs-per-minute 600] [--seed 7] [--keep]
//
// A private PostgreSQL cluster (restarted once per ~5 minutes of chaos), the RunningHub
// simulator with faults of every class, 3 dispatcher processes and 2 webhook servers
// behind a round-robin forwarder, processes SIGKILLed at random and restarted. At the
// end the system drains and every guarantee is checked; the figures are printed and
// the exit code is 1 when a check failed. Logs of every process are kept under the
// run's folder when a check fails (or with --keep).
//
// Besides the checks of test/helpers/chaos.ts, the soak checks that rhpool.runs and
// the product's job rows are in step (bench/lib/runs-in-step.ts): every five seconds
// or more (see snapshotShare) during the run and once at the end, every unfinished
// job row has its run with the same status and account, and no run is left for a
// finished job.
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { callbackMode, positiveNumber, readCommandLine, wholeNumber } from './lib/command-line.ts'
import { describe, kindOf, runsOutOfStep, type OutOfStep, type OutOfStepKind } from './lib/runs-in-step.ts'
import { testKeys } from '../test/helpers/system.ts'
import { defaultChaosOptions, figureReport, removeWorkDir, runChaos, verifyChaos, type Check } from '../test/helpers/chaos.ts'

const usage = `Usage: npx tsx bench/soak.ts [options]

  --minutes N            length of the chaos phase; may be fractional (default 10)
  --jobs-per-minute N    jobs inserted per minute of chaos (default 600)
  --seed N               seed of the fault schedule, to replay a run (default: from the clock; printed)
  --dispatchers N        dispatcher processes (default 3)
  --webhook-servers N    webhook server processes behind the forwarder (default 2)
  --accounts N           RunningHub accounts (keys) in the pool, 1 to 4 (default 3)
  --slots N              rhpool's slots per account; the simulator allows twice as many (default 3)
  --callbacks MODE       confirmed (rhpool's default: each callback checked with RunningHub's
                         query) or trusted (applied as sent, as in the first soak figures of
                         bench/README.md) (default confirmed)
  --keep                 keep the work folder (logs, stopped database) even when every check passes
  --quiet                no progress lines, only the figures and the checks
  --help                 this text

Exit code 0 when every guarantee held, 1 when a check failed, 2 for a bad argument.`

const settings = readCommandLine({
  script: 'bench/soak.ts',
  usage,
  options: {
    minutes: { type: 'string', default: '10' },
    'jobs-per-minute': { type: 'string', default: '600' },
    seed: { type: 'string' },
    dispatchers: { type: 'string', default: '3' },
    'webhook-servers': { type: 'string', default: '2' },
    accounts: { type: 'string', default: '3' },
    slots: { type: 'string', default: '3' },
    callbacks: { type: 'string', default: 'confirmed' },
    keep: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
  read: (values) => ({
    minutes: positiveNumber('minutes', values.minutes),
    jobsPerMinute: positiveNumber('jobs-per-minute', values['jobs-per-minute']),
    seed: values.seed === undefined ? Date.now() % 1_000_000 : wholeNumber('seed', values.seed, 0),
    dispatchers: wholeNumber('dispatchers', values.dispatchers),
    webhookServers: wholeNumber('webhook-servers', values['webhook-servers']),
    accounts: accountCount(values.accounts),
    slots: wholeNumber('slots', values.slots),
    callbacks: callbackMode(values.callbacks),
    keep: values.keep,
    quiet: values.quiet,
  }),
})

/** The chaos helper has as many test keys as test/helpers/system.ts names. */
function accountCount(text: string): number {
  const count = wholeNumber('accounts', text)
  if (count > testKeys.length) {
    process.stderr.write(`bench/soak.ts: --accounts ${count}: at most ${testKeys.length} (the test keys of test/helpers/system.ts)\n`)
    process.exit(2)
  }
  return count
}

function restartFractions(count: number): number[] {
  return Array.from({ length: count }, (_, i) => (i + 0.5) / count)
}

const { minutes, jobsPerMinute } = settings
const workDir = join(tmpdir(), `rhpool-soak-${process.pid}-${Date.now()}`)
const chaosMs = Math.round(minutes * 60_000)
const options = {
  ...defaultChaosOptions(workDir),
  seed: settings.seed,
  jobs: Math.round(jobsPerMinute * minutes),
  chaosMs,
  drainTimeoutMs: 90_000,
  dispatchers: settings.dispatchers,
  webhookServers: settings.webhookServers,
  accounts: settings.accounts,
  slots: settings.slots,
  // Twice rhpool's limit, so an overload would be accepted and seen.
  simConcurrency: settings.slots * 2,
  // One Postgres restart per five minutes of chaos, at least one.
  postgresRestarts: restartFractions(Math.max(1, Math.round(minutes / 5))),
  progress: settings.quiet ? undefined : (line: string) => process.stdout.write(`[soak] ${line}\n`),
}

// test/helpers/chaos.ts reads the callback mode of its rhpool processes from here.
process.env.RHPOOL_CHAOS_CONFIRM = settings.callbacks === 'confirmed' ? 'true' : 'false'

/**
 * rhpool.runs against the job rows every five seconds while the chaos runs. The chaos
 * helper does not hand out its database before the run is over, so this reads the
 * port of the cluster it starts in the soak's own work folder from its
 * postmaster.pid (4th line; trust authentication, user postgres, 127.0.0.1). A
 * sample that fails (the database not made yet, being migrated or restarting) is
 * skipped.
 */
/**
 * A snapshot reads every unfinished job row, so its cost grows with the job
 * tables; once a second it took a core by 25,000 jobs and starved the system
 * it watched (the first 100,000-job attempt fell from 24 to 3 jobs a second).
 * So the watcher waits at least 5 s, and at least four times as long as its
 * last snapshot took: it never takes more than a fifth of one backend.
 */
const snapshotEveryMs = 5000
const snapshotShare = 0.2

function watchRunsInStep(): { stop(): Promise<{ snapshots: number; outOfStep: string[] }> } {
  const pidFile = join(workDir, 'pgdata', 'postmaster.pid')
  let sql: postgres.Sql | undefined
  let port: number | undefined
  let snapshots = 0
  const outOfStep: string[] = []
  let watching = true
  /** The running server's port, or undefined (none yet, or initdb's standalone backend: a negative pid). */
  const serverPort = (): number | undefined => {
    if (!existsSync(pidFile)) return undefined
    const lines = readFileSync(pidFile, 'utf8').split('\n')
    const pid = Number(lines[0])
    const listening = Number(lines[3])
    return Number.isInteger(pid) && pid > 0 && Number.isInteger(listening) && listening > 0 ? listening : undefined
  }
  const loop = (async () => {
    let lastSnapshotMs = 0
    while (watching) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(snapshotEveryMs, lastSnapshotMs * (1 / snapshotShare - 1))))
      if (!watching) break
      try {
        const now = serverPort()
        if (now === undefined) continue
        if (now !== port) {
          await sql?.end({ timeout: 1 }).catch(() => {})
          port = now
          sql = postgres(`postgres://postgres@127.0.0.1:${port}/rhpool_chaos`, {
            max: 1,
            onnotice: () => {},
            connect_timeout: 2,
            idle_timeout: 5,
          })
        }
        const snapshotStarted = Date.now()
        const rows = await runsOutOfStep(sql!)
        lastSnapshotMs = Date.now() - snapshotStarted
        snapshots++
        if (snapshots % 3 === 1 && !settings.quiet) process.stdout.write(`[soak] ${await poolLine(sql!)}\n`)
        for (const row of rows) outOfStep.push(`${new Date().toISOString()} ${kindOf(row)}: ${describe(row)}`)
      } catch {
        // not there yet, or restarting: the next sample will do
      }
    }
  })()
  return {
    async stop() {
      watching = false
      await loop
      await sql?.end({ timeout: 2 }).catch(() => {})
      return { snapshots, outOfStep }
    },
  }
}

/**
 * What the pool does right now, in one line: jobs queued, and per account the
 * slots in use against what rhpool may use (learned limit, cooldown, disabled).
 * A throughput that falls shows here first.
 */
async function poolLine(sql: postgres.Sql): Promise<string> {
  const [row] = await sql<{ pool: PoolSample }[]>`select rhpool.pool_status() as pool`
  const pool = row!.pool
  const accounts = pool.accounts.map((a) => {
    const state = !a.enabled ? ` disabled (${a.disabledCode ?? a.disabledReason})` : a.cooldownUntil ? ' cooling down' : ''
    const limit = a.learnedLimit === null ? '' : ` learned ${a.learnedLimit}`
    return `${a.name} ${a.running}/${a.maxSlots}${limit}${state}`
  })
  return `pool: ${pool.totalQueued} queued, ${pool.totalRunning} in flight, ${pool.liveDispatchers} live dispatchers; ${accounts.join('; ')}`
}

interface PoolSample {
  totalQueued: number
  totalRunning: number
  liveDispatchers: number
  accounts: Array<{
    name: string
    running: number
    maxSlots: number
    enabled: boolean
    disabledCode: string | null
    disabledReason: string | null
    cooldownUntil: string | null
    learnedLimit: number | null
  }>
}

const sample = (items: string[], n = 5): string => JSON.stringify(items.slice(0, n)) + (items.length > n ? ` … (${items.length})` : '')

/** The runs-in-step checks, at rest after the drain and from the snapshots taken during the run. */
function inStepChecks(atEnd: OutOfStep[], during: { snapshots: number; outOfStep: string[] }): Check[] {
  const of = (...kinds: OutOfStepKind[]) => atEnd.filter((row) => kinds.includes(kindOf(row))).map((row) => describe(row))
  const unmatched = of('job without its run', 'run and job disagree')
  const leftOver = of('run of a finished job', 'run without a job row')
  return [
    { name: 'every unfinished job has its run, with the same status and account', ok: unmatched.length === 0, detail: sample(unmatched) },
    { name: 'no run left for a finished job (or a job row that is gone)', ok: leftOver.length === 0, detail: sample(leftOver) },
    {
      name: `no snapshot during the run saw a run and its job out of step (${during.snapshots} snapshots)`,
      ok: during.outOfStep.length === 0 && during.snapshots > 0,
      detail: during.snapshots === 0 ? 'no snapshot could be taken' : sample(during.outOfStep),
    },
  ]
}

const teardowns: Array<() => unknown> = []
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) }
async function tearDown(): Promise<void> {
  for (const fn of teardowns.splice(0).reverse()) {
    try {
      await fn()
    } catch {
      // best effort
    }
  }
}
// Ctrl-C (or SIGTERM) stops every process the soak started and its cluster, as the end of a run does.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stdout.write(`\n[soak] ${signal}: stopping every process and the database; work dir ${workDir} kept\n`)
    void tearDown().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  })
}
let exitCode = 0
const started = Date.now()
process.stdout.write(
  `[soak] ${minutes} min, ${options.jobs} jobs, seed ${options.seed}, ${options.dispatchers} dispatchers, ${options.webhookServers} webhook servers, ${options.accounts} accounts × ${options.slots} slots, callbacks ${settings.callbacks}; work dir ${workDir}\n`
)
try {
  const watcher = watchRunsInStep()
  const run = await runChaos(t, options).catch(async (error: unknown) => {
    await watcher.stop()
    throw error
  })
  const during = await watcher.stop()
  const verdict = await verifyChaos(run)
  const { figures } = verdict
  const checks = [...verdict.checks, ...inStepChecks(await runsOutOfStep(run.sql), during)]
  const failed = checks.some((c) => !c.ok)
  await run.close({ keepDatabase: failed || settings.keep })
  process.stdout.write(`\n${figureReport(figures)}\n\n`)
  for (const check of checks) {
    process.stdout.write(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}${check.ok || !check.detail ? '' : `: ${check.detail}`}\n`)
    if (!check.ok) exitCode = 1
  }
  const unexpected = run.supervisor.exits.filter((e) => !e.expected)
  for (const exit of unexpected)
    process.stdout.write(
      `\n${exit.name} (pid ${exit.pid}) exited by itself with code ${exit.code} after ${exit.uptimeMs} ms:\n${exit.tail}\n`
    )
  const badStops = run.stopCodes.filter((s) => s.code !== 0)
  if (badStops.length) process.stdout.write(`\nprocesses that did not stop cleanly on SIGTERM: ${JSON.stringify(badStops)}\n`)
} catch (error) {
  process.stderr.write(`soak: ${(error as Error).stack ?? error}\n`)
  exitCode = 1
} finally {
  await tearDown()
}
process.stdout.write(
  `\n[soak] ${exitCode === 0 ? 'all guarantees held' : 'SOME GUARANTEES FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`
)
if (exitCode === 0 && !settings.keep) removeWorkDir(workDir)
else process.stdout.write(`[soak] logs and database kept in ${workDir}\n`)
process.exit(exitCode)
