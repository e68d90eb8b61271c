// Learned limits: one account configured for more slots than RunningHub really
// allows, against the same run configured right. Each refusal (421) lowers the
// account's learned limit by one instead of cooling the whole account down, so
// the wrongly configured run should take about as long as the right one and be
// refused only once or twice. queue/status never answers by default (it is
// "developing" on one site), so the limit is learned from refusals alone.
//
//   npx tsx bench/limits.ts                 # 60 jobs, configured 3 vs 2, RunningHub allows 2
//   npx tsx bench/limits.ts --help
import { migrate } from '../src/db/migrate.ts'
import { callbackMode, readCommandLine, wholeNumber } from './lib/command-line.ts'
import { connect } from './lib/bench-database.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { startInProcessPool, waitUntil } from './lib/rhpool-in-process.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'
import { jobTables, readyJobValues } from './lib/sample-jobs.ts'

const usage = `Usage: npx tsx bench/limits.ts [options]

  --jobs N            jobs per run, spread over the four tools (default 60)
  --configured N      slots configured in the wrong run (default 3)
  --real N            what RunningHub (the simulator) really allows, and the right run's slots (default 2)
  --task-ms N         task time at the simulator (default 250)
  --queue-status      let queue/status answer (default: it never does, the limit is learned from 421s)
  --rounds N          pairs of runs, alternating which goes first; medians are compared (default 3)
  --callbacks MODE    confirmed (rhpool's default, checked with RunningHub's query) or trusted
                      (applied as sent, as for the first figures of bench/README.md) (default confirmed)
  --help              this text

Exits 1 when the wrong run is more than 10 % slower than the right one or was refused more than twice.`

const options = readCommandLine({
  script: 'bench/limits.ts',
  usage,
  options: {
    jobs: { type: 'string', default: '60' },
    configured: { type: 'string', default: '3' },
    real: { type: 'string', default: '2' },
    'task-ms': { type: 'string', default: '250' },
    'queue-status': { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    callbacks: { type: 'string', default: 'confirmed' },
  },
  read: (values) => ({
    jobs: wholeNumber('jobs', values.jobs),
    configured: wholeNumber('configured', values.configured),
    real: wholeNumber('real', values.real),
    taskMs: wholeNumber('task-ms', values['task-ms']),
    queueStatus: values['queue-status'],
    rounds: wholeNumber('rounds', values.rounds),
    callbacks: callbackMode(values.callbacks),
  }),
})

const tables = jobTables
const inputs = readyJobValues

interface RunFigures {
  label: string
  slots: number
  wallMs: number
  refused: number
  maxAtOnce: number
  completed: number
  effective: number
  reason: string | null
}

async function run(cluster: { createDatabase(name: string): Promise<string> }, label: string, slots: number): Promise<RunFigures> {
  const url = await cluster.createDatabase(`limits_${slots}_${Date.now()}`)
  await migrate(url)
  const sql = connect(url)
  try {
    for (let i = 0; i < options.jobs; i++) {
      const table = tables[i % tables.length]!
      await sql.unsafe(`insert into ${table} ${inputs[table]}`)
    }
    const started = performance.now()
    const pool = await startInProcessPool({
      databaseUrl: url,
      accounts: 1,
      slotsPerAccount: slots,
      simulatorConcurrency: options.real,
      taskDurationMs: options.taskMs,
      callbacks: options.callbacks,
    })
    // The health probe runs on the maintenance timer, long after the first claims.
    if (!options.queueStatus) pool.sim.configure({ queueStatus: 'notFound' })
    let wallMs: number
    try {
      await waitUntil(
        'every job to finish',
        async () => {
          const [row] = await sql`select count(*)::int as n from rhpool.job_events`
          return row!.n === options.jobs
        },
        10 * 60_000,
        20
      )
      wallMs = performance.now() - started
    } finally {
      await pool.stop()
    }
    const [outcome] = await sql`select count(*) filter (where status = 'completed')::int as completed from rhpool.job_events`
    const [account] = await sql`select max_slots, limit_reason from rhpool.account_status where name = 'primary'`
    return {
      label,
      slots,
      wallMs,
      refused: pool.sim.ledger.submissions.filter((s) => s.outcome !== 'accepted').length,
      maxAtOnce: pool.sim.ledger.maxConcurrencyAnyKey,
      completed: outcome!.completed,
      effective: account!.max_slots,
      reason: account!.limit_reason,
    }
  } finally {
    await sql.end()
  }
}

async function main(): Promise<void> {
  printHeader('rhpool learned limits: configured wrong vs right', `npx tsx bench/limits.ts ${process.argv.slice(2).join(' ')}`.trimEnd())
  console.log(
    `${options.jobs} jobs, one account, RunningHub allows ${options.real}, tasks ${options.taskMs} ms; queue/status ${options.queueStatus ? 'answers' : 'never answers (404)'}; callbacks ${options.callbacks}`
  )
  console.log(`best possible: ${fixed((Math.ceil(options.jobs / options.real) * options.taskMs) / 1000, 2)} s\n`)
  // One warm-up run first (module loading, JIT, the cluster's caches), then pairs in alternating
  // order, so neither configuration always pays for going first; the medians are compared.
  const { wrongRuns, rightRuns } = await withThrowawayCluster('limits', async (cluster) => {
    await run(cluster, 'warm-up', options.real)
    const wrongRuns: RunFigures[] = []
    const rightRuns: RunFigures[] = []
    for (let round = 0; round < options.rounds; round++) {
      const wrongRun = () => run(cluster, `configured ${options.configured} (wrong)`, options.configured).then((f) => wrongRuns.push(f))
      const rightRun = () => run(cluster, `configured ${options.real} (right)`, options.real).then((f) => rightRuns.push(f))
      if (round % 2 === 0) {
        await wrongRun()
        await rightRun()
      } else {
        await rightRun()
        await wrongRun()
      }
    }
    return { wrongRuns, rightRuns }
  })
  const median = (runs: RunFigures[]): RunFigures => [...runs].sort((a, b) => a.wallMs - b.wallMs)[Math.floor(runs.length / 2)]!
  const figures = [median(wrongRuns), median(rightRuns)]
  console.log(
    `runs (wall time s): wrong ${wrongRuns.map((f) => fixed(f.wallMs / 1000, 2)).join(', ')}; right ${rightRuns.map((f) => fixed(f.wallMs / 1000, 2)).join(', ')}; the table shows each median run\n`
  )
  console.log(
    formatTable(
      [
        { header: 'run' },
        { header: 'wall time s', align: 'right' },
        { header: 'refused', align: 'right' },
        { header: 'max at once', align: 'right' },
        { header: 'completed', align: 'right' },
        { header: 'effective limit at end' },
      ],
      figures.map((f) => [
        f.label,
        fixed(f.wallMs / 1000, 2),
        whole(f.refused),
        whole(f.maxAtOnce),
        whole(f.completed),
        `${f.effective}${f.reason ? ` (${f.reason})` : ''}`,
      ])
    )
  )
  const [wrong, right] = figures as [RunFigures, RunFigures]
  const slower = wrong.wallMs / right.wallMs - 1
  console.log(
    `\nwrong vs right: ${slower >= 0 ? '+' : ''}${fixed(slower * 100, 1)} % wall time; refused ${wrong.refused} vs ${right.refused}`
  )
  console.log(`load average at end: ${loadAverage()}`)
  const all = [...wrongRuns, ...rightRuns]
  const ok = slower <= 0.1 && all.every((f) => f.refused <= 2 && f.completed === options.jobs)
  console.log(
    ok ? 'PASS: within 10 %, at most 2 refusals a run' : 'FAIL: more than 10 % slower, or more than 2 refusals, or jobs not completed'
  )
  process.exitCode = ok ? 0 : 1
}

await main()
