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
import { positiveNumber, readCommandLine, wholeNumber } from './lib/command-line.ts'
import { defaultChaosOptions, figureReport, removeWorkDir, runChaos, verifyChaos } from '../test/helpers/chaos.ts'

const usage = `Usage: npx tsx bench/soak.ts [options]

  --minutes N            length of the chaos phase; may be fractional (default 10)
  --jobs-per-minute N    jobs inserted per minute of chaos (default 600)
  --seed N               seed of the fault schedule, to replay a run (default: from the clock; printed)
  --dispatchers N        dispatcher processes (default 3)
  --webhook-servers N    webhook server processes behind the forwarder (default 2)
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
    keep: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
  read: (values) => ({
    minutes: positiveNumber('minutes', values.minutes),
    jobsPerMinute: positiveNumber('jobs-per-minute', values['jobs-per-minute']),
    seed: values.seed === undefined ? Date.now() % 1_000_000 : wholeNumber('seed', values.seed, 0),
    dispatchers: wholeNumber('dispatchers', values.dispatchers),
    webhookServers: wholeNumber('webhook-servers', values['webhook-servers']),
    keep: values.keep,
    quiet: values.quiet,
  }),
})

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
  // One Postgres restart per five minutes of chaos, at least one.
  postgresRestarts: restartFractions(Math.max(1, Math.round(minutes / 5))),
  progress: settings.quiet ? undefined : (line: string) => process.stdout.write(`[soak] ${line}\n`),
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
  await run.close({ keepDatabase: failed || settings.keep })
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
if (exitCode === 0 && !settings.keep) removeWorkDir(workDir)
else process.stdout.write(`[soak] logs and database kept in ${workDir}\n`)
process.exit(exitCode)
