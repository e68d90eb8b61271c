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
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { defaultChaosOptions, figureReport, removeWorkDir, runChaos, verifyChaos } from '../test/helpers/chaos.ts'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    'jobs-per-minute': { type: 'string', default: '600' },
    seed: { type: 'string' },
    dispatchers: { type: 'string', default: '3' },
    'webhook-servers': { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
})

function positive(name: string, text: string | undefined): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`soak: --${name} must be a positive number, got ${JSON.stringify(text)}\n`)
    process.exit(2)
  }
  return n
}

function restartFractions(count: number): number[] {
  return Array.from({ length: count }, (_, i) => (i + 0.5) / count)
}

const minutes = positive('minutes', values.minutes)
const jobsPerMinute = positive('jobs-per-minute', values['jobs-per-minute'])
const workDir = join(tmpdir(), `rhpool-soak-${process.pid}-${Date.now()}`)
const chaosMs = Math.round(minutes * 60_000)
const options = {
  ...defaultChaosOptions(workDir),
  seed: values.seed ? positive('seed', values.seed) : Date.now() % 1_000_000,
  jobs: Math.round(jobsPerMinute * minutes),
  chaosMs,
  drainTimeoutMs: 90_000,
  dispatchers: positive('dispatchers', values.dispatchers),
  webhookServers: positive('webhook-servers', values['webhook-servers']),
  // One Postgres restart per five minutes of chaos, at least one.
  postgresRestarts: restartFractions(Math.max(1, Math.round(minutes / 5))),
  progress: values.quiet ? undefined : (line: string) => process.stdout.write(`[soak] ${line}\n`),
}

const teardowns: Array<() => unknown> = []
const t = { teardown: (fn: () => unknown) => void teardowns.push(fn) }
let exitCode = 0
const started = Date.now()
process.stdout.write(`[soak] ${minutes} min, ${options.jobs} jobs, seed ${options.seed}, ${options.dispatchers} dispatchers, ${options.webhookServers} webhook servers, ${options.accounts} accounts × ${options.slots} slots; work dir ${workDir}\n`)
try {
  const run = await runChaos(t, options)
  const { checks, figures } = await verifyChaos(run)
  const failed = checks.some((c) => !c.ok)
  await run.close({ keepDatabase: failed || values.keep })
  process.stdout.write(`\n${figureReport(figures)}\n\n`)
  for (const check of checks) {
    process.stdout.write(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}${check.ok || !check.detail ? '' : `: ${check.detail}`}\n`)
    if (!check.ok) exitCode = 1
  }
  const unexpected = run.supervisor.exits.filter((e) => !e.expected)
  for (const exit of unexpected) process.stdout.write(`\n${exit.name} (pid ${exit.pid}) exited by itself with code ${exit.code} after ${exit.uptimeMs} ms:\n${exit.tail}\n`)
  const badStops = run.stopCodes.filter((s) => s.code !== 0)
  if (badStops.length) process.stdout.write(`\nprocesses that did not stop cleanly on SIGTERM: ${JSON.stringify(badStops)}\n`)
} catch (error) {
  process.stderr.write(`soak: ${(error as Error).stack ?? error}\n`)
  exitCode = 1
} finally {
  for (const fn of teardowns.reverse()) {
    try {
      await fn()
    } catch {
      // best effort
    }
  }
}
process.stdout.write(`\n[soak] ${exitCode === 0 ? 'all guarantees held' : 'SOME GUARANTEES FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
if (exitCode === 0 && !values.keep) removeWorkDir(workDir)
else process.stdout.write(`[soak] logs and database kept in ${workDir}\n`)
process.exit(exitCode)
