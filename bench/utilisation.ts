// Slot utilisation with a backlog: how much of the slot-time the accounts allow
// rhpool actually uses, and how long a slot stays empty between one task
// ending and the next starting on that key. Task times are realistic ones
// compressed by --scale, so a run takes a minute, not hours; the gap between
// tasks is not compressed (it is rhpool's real turnover), so a high scale
// makes the figure pessimistic: at scale 1 the same gap weighs 100 times less.
//
// Everything is read from the simulator's ledger, which records per key the
// instant each task is admitted (it counts against the limit from then on,
// like RunningHub's) and the instant it ends.
//
//   npx tsx bench/utilisation.ts                 # 2 accounts × 3 slots, 600 jobs, scale 100 (~1.5 min)
//   npx tsx bench/utilisation.ts --quick         # 150 jobs
//   npx tsx bench/utilisation.ts --help
import { migrate } from '../src/db/migrate.ts'
import type { ConcurrencyChange } from '../simulator/index.ts'
import { connect } from './lib/bench-database.ts'
import { BadArgument, callbackMode, oneOf, positiveNumber, readCommandLine, wholeNumber } from './lib/command-line.ts'
import { summarize } from './lib/latency-stats.ts'
import { turnoverGaps as gapsBetween } from './lib/turnover-gaps.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { appIdsByTable, startInProcessPool, waitUntil } from './lib/rhpool-in-process.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'
import { jobTables, readyJobValues } from './lib/sample-jobs.ts'

const usage = `Usage: npx tsx bench/utilisation.ts [options]

  --accounts N      accounts (default 2)
  --slots N         slots per account, in rhpool and at the simulator (default 3)
  --jobs N          backlog, spread evenly over the four tools in FIFO order (default 600; --quick 150)
  --scale N         divide the task times by N (default 100)
  --times LIST      real task times in seconds per tool
                    (default upscaler=20,pose_changer=30,veste_ai=40,video_upscaler=120)
  --strategy S      fill-first or spread (default fill-first)
  --callbacks MODE  confirmed (rhpool's default, checked with RunningHub's query) or trusted
                    (applied as sent, as for the first figures of bench/README.md) (default confirmed)
  --quick           150 jobs
  --help            this text`

const tools = ['upscaler', 'pose_changer', 'veste_ai', 'video_upscaler'] as const

const options = readCommandLine({
  script: 'bench/utilisation.ts',
  usage,
  options: {
    accounts: { type: 'string', default: '2' },
    slots: { type: 'string', default: '3' },
    jobs: { type: 'string' },
    scale: { type: 'string', default: '100' },
    times: { type: 'string', default: 'upscaler=20,pose_changer=30,veste_ai=40,video_upscaler=120' },
    strategy: { type: 'string', default: 'fill-first' },
    callbacks: { type: 'string', default: 'confirmed' },
    quick: { type: 'boolean', default: false },
  },
  read: (values) => ({
    accounts: wholeNumber('accounts', values.accounts),
    slots: wholeNumber('slots', values.slots),
    jobs: wholeNumber('jobs', values.jobs ?? (values.quick ? '150' : '600')),
    scale: positiveNumber('scale', values.scale),
    strategy: oneOf('strategy', values.strategy, ['fill-first', 'spread']),
    times: taskTimes(values.times),
    callbacks: callbackMode(values.callbacks),
  }),
})

/** `upscaler=20,...` → tool → real task time in seconds; every tool needs one. */
function taskTimes(text: string): Map<string, number> {
  const times = new Map(
    text.split(',').map((pair) => {
      const [tool, seconds] = pair.split('=').map((part) => part.trim())
      return [oneOf('times', tool ?? '', tools), positiveNumber('times', seconds ?? '')] as const
    })
  )
  for (const tool of tools) if (!times.has(tool)) throw new BadArgument(`--times gives no time for ${tool}`)
  return times
}

const tables = jobTables
const inputs = readyJobValues

interface KeyFigures {
  key: string
  tasks: number
  /** Slot-ms in use / (slots × window ms), while the backlog lasted. */
  backlogUtilisation: number
  /** The same over the whole run, drain included. */
  runUtilisation: number
  gaps: number[]
  maxConcurrency: number
}

/** ∫ running dt over [from, to], from the ledger's +1/−1 timeline of one key. */
function slotMs(timeline: readonly ConcurrencyChange[], from: number, to: number): number {
  let total = 0
  let running = 0
  let at = from
  for (const change of timeline) {
    const t = Math.min(Math.max(change.at, from), to)
    total += running * (t - at)
    at = t
    running = change.running
  }
  return total + running * (to - at)
}

/** Each end on a key is paired with the next admission on that key (the slot it freed being refilled). */
function keyTurnoverGaps(timeline: readonly ConcurrencyChange[]): number[] {
  const ends = timeline.filter((c) => c.delta === -1).map((c) => c.at)
  const starts = timeline.filter((c) => c.delta === 1).map((c) => c.at)
  return gapsBetween(ends, starts)
}

async function main(): Promise<void> {
  const runStarted = performance.now()
  printHeader('rhpool slot utilisation with a backlog', `npx tsx bench/utilisation.ts ${process.argv.slice(2).join(' ')}`.trimEnd())
  await withThrowawayCluster('utilisation', async (cluster) => {
    const url = await cluster.createDatabase('utilisation')
    await migrate(url)
    const sql = connect(url)
    try {
      // Task times per RunningHub app: every app of a tool runs as long as the tool's time / scale.
      const durations: Record<string, number> = {}
      const msByTable = new Map<string, number>()
      for (const [table, apps] of await appIdsByTable(sql)) {
        const seconds = options.times.get(table.replace(/_jobs$/, ''))
        if (seconds === undefined) throw new Error(`--times gives no time for ${table.replace(/_jobs$/, '')}`)
        const ms = Math.round((seconds * 1000) / options.scale)
        msByTable.set(table, ms)
        for (const app of apps.values()) durations[app] = ms
      }
      await sql`update rhpool.settings set value = ${options.strategy} where key = 'strategy'`

      // The backlog, in FIFO order: tools taking turns, one row per job as a client inserts them.
      for (let i = 0; i < options.jobs; i++) {
        const table = tables[i % tables.length]!
        await sql.unsafe(`insert into ${table} ${inputs[table]}`)
      }
      const meanTaskMs = tables.reduce((sum, t) => sum + msByTable.get(t)!, 0) / tables.length
      const slotsTotal = options.accounts * options.slots
      console.log(
        `backlog: ${options.jobs} jobs; task times at scale 1/${options.scale}: ${tables.map((t) => `${t.replace(/_jobs$/, '')} ${msByTable.get(t)} ms`).join(', ')}`
      )
      console.log(
        `${options.accounts} accounts × ${options.slots} slots = ${slotsTotal} slots, callbacks ${options.callbacks}; best possible: ${fixed(slotsTotal / (meanTaskMs / 1000), 1)} jobs/s, ${fixed((options.jobs * meanTaskMs) / slotsTotal / 1000, 1)} s`
      )

      const pool = await startInProcessPool({
        databaseUrl: url,
        accounts: options.accounts,
        slotsPerAccount: options.slots,
        taskDurationMs: 0,
        taskDurationByApp: durations,
        // The strategy is the database's setting (written above), read by every claim.
        callbacks: options.callbacks,
        env: {},
      })
      const loadAtStart = loadAverage()
      try {
        await waitUntil(
          'every job to finish',
          async () => {
            const [row] = await sql`select count(*)::int as n from rhpool.job_events`
            return row!.n === options.jobs
          },
          30 * 60_000,
          100
        )
      } finally {
        await pool.stop()
      }
      const loadAtEnd = loadAverage()

      const [outcome] =
        await sql`select count(*) filter (where status = 'completed')::int as completed, count(*)::int as all from rhpool.job_events`
      const tasks = pool.sim.ledger.tasks
      const refused = pool.sim.ledger.submissions.filter((s) => s.outcome !== 'accepted').length
      const firstStart = Math.min(...tasks.map((t) => t.createdAt))
      const lastStart = Math.max(...tasks.map((t) => t.createdAt))
      const lastEnd = Math.max(...tasks.map((t) => t.endedAt ?? Number.NaN))

      const perKey: KeyFigures[] = pool.keys
        .map((rawKey) => pool.sim.ledger.concurrency(rawKey))
        .map((key, i) => ({
          key: pool.accountNames[i]!,
          tasks: key.timeline.filter((c) => c.delta === 1).length,
          backlogUtilisation: slotMs(key.timeline, firstStart, lastStart) / (options.slots * (lastStart - firstStart)),
          runUtilisation: slotMs(key.timeline, firstStart, lastEnd) / (options.slots * (lastEnd - firstStart)),
          // Only the gaps while jobs were still waiting: after the last admission a freed slot has nothing to take.
          gaps: keyTurnoverGaps(key.timeline.filter((c) => c.delta === 1 || c.at < lastStart)),
          maxConcurrency: key.maxConcurrency,
        }))
      const allGaps = perKey.flatMap((k) => k.gaps)

      console.log(
        `\nSlot utilisation per key (${options.strategy}), from the simulator's ledger (100% = every slot of the key busy all the time):\n`
      )
      const rows = perKey.map((k) => {
        const gap = summarize(k.gaps)
        return [
          k.key,
          whole(k.tasks),
          `${k.maxConcurrency} / ${options.slots}`,
          `${fixed(k.backlogUtilisation * 100, 1)}%`,
          `${fixed(k.runUtilisation * 100, 1)}%`,
          whole(gap.count),
          fixed(gap.meanMs, 1),
          fixed(gap.p50Ms, 0),
          fixed(gap.p99Ms, 0),
          fixed(gap.maxMs, 0),
        ]
      })
      const total = summarize(allGaps)
      const backlogAll = perKey.reduce((sum, k) => sum + k.backlogUtilisation, 0) / perKey.length
      const runAll = perKey.reduce((sum, k) => sum + k.runUtilisation, 0) / perKey.length
      rows.push([
        'all keys',
        whole(tasks.length),
        `${pool.sim.ledger.maxConcurrencyAnyKey} / ${options.slots}`,
        `${fixed(backlogAll * 100, 1)}%`,
        `${fixed(runAll * 100, 1)}%`,
        whole(total.count),
        fixed(total.meanMs, 1),
        fixed(total.p50Ms, 0),
        fixed(total.p99Ms, 0),
        fixed(total.maxMs, 0),
      ])
      console.log(
        formatTable(
          [
            { header: 'account' },
            { header: 'tasks', align: 'right' },
            { header: 'max at once', align: 'right' },
            { header: 'in use, backlog', align: 'right' },
            { header: 'in use, whole run', align: 'right' },
            { header: 'gaps', align: 'right' },
            { header: 'gap mean ms', align: 'right' },
            { header: 'gap p50 ms', align: 'right' },
            { header: 'gap p99 ms', align: 'right' },
            { header: 'gap max ms', align: 'right' },
          ],
          rows
        )
      )
      const runSeconds = (lastEnd - firstStart) / 1000
      console.log(
        `\n"backlog": from the first task admitted to the last (${fixed((lastStart - firstStart) / 1000, 1)} s; jobs were waiting all along).`
      )
      console.log(
        `"whole run": to the last task's end (${fixed(runSeconds, 1)} s), including the drain when the last slots empty one by one.`
      )
      console.log(
        `gap: a task ends at the simulator → the next task is admitted on the same key (ledger times, 1 ms resolution), while jobs were waiting.`
      )
      const realTaskMs = meanTaskMs * options.scale
      console.log(
        `mean task ${fixed(meanTaskMs, 0)} ms; a slot that waits g ms after each task is busy task / (task + g) of the time: with the mean gap,`
      )
      console.log(
        `${fixed((meanTaskMs / (meanTaskMs + total.meanMs)) * 100, 1)}% here, and ${fixed((realTaskMs / (realTaskMs + total.meanMs)) * 100, 2)}% at scale 1 (real task times, mean ${fixed(realTaskMs / 1000, 1)} s) if the gap stays the same.`
      )
      console.log(
        `throughput ${fixed(options.jobs / runSeconds, 1)} jobs/s; ${outcome!.completed}/${outcome!.all} completed; create calls refused by the simulator: ${refused}.`
      )
      console.log(`load average: ${loadAtStart} at the first task, ${loadAtEnd} at the end`)
    } finally {
      await sql.end({ timeout: 5 })
    }
  })
  console.log(`\ntotal wall time: ${((performance.now() - runStarted) / 1000).toFixed(1)} s`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  process.exitCode = 1
})
