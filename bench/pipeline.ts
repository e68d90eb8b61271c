// The dispatcher and webhook, measured end to end over real HTTP against the
// simulator (zero or short task times), on a throwaway cluster:
//   1. insert → submission while a slot is free (NOTIFY path), sequential;
//   2. slot turnover: a task ends → its callback → the next queued job is
//      submitted on the freed slot (p50/p99 of the gap), and slot utilisation;
//   3. webhook throughput with duplicates mixed in (HTTP-only rhpool). Its
//      tasks are made up (put in flight with rhpool's own functions, never
//      created at the simulator), so its callbacks are always trusted: there is
//      nothing for RunningHub's query to confirm.
// Run: npx tsx bench/pipeline.ts [--quick]   (--help lists the options)
import { loadConfig } from '../src/config/index.ts'
import { migrate } from '../src/db/migrate.ts'
import { freePort } from '../src/localdb/cluster.ts'
import { createLogger } from '../src/log.ts'
import { startService, type Service } from '../src/service.ts'
import { startSimulator, type SimulatorOptions } from '../simulator/index.ts'
import { webhookPath } from '../src/webhook/job-reference.ts'
import { callbackEnv, callbackMode, oneOf, readCommandLine } from './lib/command-line.ts'
import { putJobsInFlight, successCallback } from './lib/jobs-in-flight.ts'
import { postDeliveries } from './lib/post-deliveries.ts'
import { summarize } from './lib/latency-stats.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { turnoverGaps } from './lib/turnover-gaps.ts'
import { turnoverStageTimes, turnoverStages, type TurnoverMarks, type TurnoverStage } from './lib/turnover-stages.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'
import { waitUntil } from './lib/rhpool-in-process.ts'
import { startSimulatorProcess, type SimulatorLedger } from './lib/simulator-process.ts'

const usage = `Usage: npx tsx bench/pipeline.ts [options]

  --quick             fewer runs: 50 insert → submission samples (not 200), 150 turnover jobs
                      (not 600), 1000 webhook jobs (not 4000)
  --callbacks MODE    parts 1 and 2: confirmed (rhpool's default, checked with RunningHub's query)
                      or trusted (applied as sent, as for the first figures of bench/README.md)
                      (default confirmed); part 3 always trusts (its tasks are made up)
  --simulator WHERE   shared (default: RunningHub's simulator in rhpool's process, its timers
                      and garbage collection on rhpool's event loop) or separate (in a process
                      of its own, as RunningHub is elsewhere; bench/README.md compares the two)
  --help              this text`

const { quick, callbacks, simulatorPlace } = readCommandLine({
  script: 'bench/pipeline.ts',
  usage,
  options: {
    quick: { type: 'boolean', default: false },
    callbacks: { type: 'string', default: 'confirmed' },
    simulator: { type: 'string', default: 'shared' },
  },
  read: (values) => ({
    quick: values.quick,
    callbacks: callbackMode(values.callbacks),
    simulatorPlace: oneOf('simulator', values.simulator, ['shared', 'separate'] as const),
  }),
})

/** The simulator where --simulator puts it, read the same way in both places. */
interface RunningHub {
  url: string
  counts(): Promise<{ submissions: number; endedTasks: number }> | { submissions: number; endedTasks: number }
  ledger(): Promise<SimulatorLedger> | SimulatorLedger
  close(): Promise<void>
}

async function startRunningHub(options: SimulatorOptions): Promise<RunningHub> {
  if (simulatorPlace === 'separate') return await startSimulatorProcess(options)
  const sim = await startSimulator(options)
  return {
    url: sim.url,
    counts: () => ({
      submissions: sim.ledger.submissions.length,
      endedTasks: sim.ledger.tasks.filter((task) => task.endedAt !== null).length,
    }),
    ledger: () => ({ submissions: [...sim.ledger.submissions], tasks: [...sim.ledger.tasks], callbacks: [...sim.ledger.callbacks] }),
    close: () => sim.close(),
  }
}
const secret = 'bench-webhook-secret-0123456789abcdef0123456789'

async function system(url: string, sim: RunningHub, keys: string[], extra: Record<string, string> = {}): Promise<Service> {
  const port = await freePort()
  const env: Record<string, string> = {
    DATABASE_URL: url,
    RUNNINGHUB_BASE_URL: sim.url,
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    WEBHOOK_SECRET: secret,
    PORT: String(port),
    ADMIN_PORT: '0',
    LOG_LEVEL: 'silent',
    RHPOOL_POLL_INTERVAL_MS: '1000',
    ...callbackEnv(callbacks),
    ...Object.fromEntries(keys.map((k, i) => [i === 0 ? 'RUNNINGHUB_API_KEY' : `RUNNINGHUB_API_KEY_${i + 1}`, k])),
    ...extra,
  }
  return await startService(loadConfig(env), createLogger('silent'))
}

async function insertToSubmission(url: string): Promise<number[]> {
  const key = 'bench-key-primary-0001'
  const sim = await startRunningHub({ accounts: [{ apiKey: key, concurrency: 3 }], config: { taskDurationMs: 0 } })
  const service = await system(url, sim, [key])
  const latencies: number[] = []
  try {
    const runs = quick ? 50 : 200
    for (let i = 0; i < runs; i++) {
      const before = (await sim.counts()).submissions
      const started = performance.now()
      await service.sql`insert into upscaler_jobs (input_file_name) values ('in.png')`
      // Polled every millisecond: this is the figure measured, and the check reads the simulator's memory only.
      await waitUntil('the submission', async () => (await sim.counts()).submissions > before, 60_000, 1)
      latencies.push(performance.now() - started)
      // Let the task finish so the next insert finds a free slot, as in the scenario measured.
      await waitUntil(
        'the slot to be free again',
        async () => (await service.sql`select count(*)::int as n from rhpool.runs where account is not null`)[0]!.n === 0,
        60_000,
        1
      )
    }
  } finally {
    await service.stop()
    await sim.close()
  }
  return latencies
}

async function turnover(
  url: string
): Promise<{ gaps: number[]; stages: Map<TurnoverStage, number[]>; utilisation: number; jobs: number; seconds: number }> {
  const key = 'bench-key-turnover-0002'
  const taskMs = 100
  const sim = await startRunningHub({ accounts: [{ apiKey: key, concurrency: 3 }], config: { taskDurationMs: taskMs } })
  const service = await system(url, sim, [key])
  const jobs = quick ? 150 : 600
  let marks = new Map<string, TurnoverMarks>()
  let ledger: SimulatorLedger = { submissions: [], tasks: [], callbacks: [] }
  try {
    await service.sql`insert into veste_ai_jobs (person_file_name, clothing_file_name) select 'p.png', 'c.png' from generate_series(1, ${jobs})`
    // The gaps come from the simulator's timestamps, so how soon the end is noticed does not
    // change them. The wait reads the simulator's memory until every task has ended, then the
    // database a few times: until 2026-12-04 it queried the database every millisecond, on
    // rhpool's own pool and cores, through the whole run (bench/README.md: no change in the
    // gap's p99 could be told from this machine's run-to-run spread, but it is load the
    // scenario measured does not have).
    await waitUntil('every task to end', async () => (await sim.counts()).endedTasks >= jobs, 300_000, 50)
    await waitUntil(
      'every job to be completed',
      async () => (await service.sql`select count(*)::int as n from veste_ai_jobs where status = 'completed'`)[0]!.n === jobs,
      60_000,
      50
    )
    ledger = await sim.ledger()
    marks = await jobMarks(service.sql, 'veste_ai_jobs', ledger)
  } finally {
    await service.stop()
    await sim.close()
  }
  const tasks = ledger.tasks.filter((task) => task.endedAt !== null)
  const ends = tasks.map((task) => task.endedAt!).sort((a, b) => a - b)
  const starts = tasks.map((task) => task.createdAt).sort((a, b) => a - b)
  const gaps = turnoverGaps(ends, starts)
  const first = Math.min(...starts)
  const last = Math.max(...ends)
  const busy = tasks.reduce((sum, task) => sum + (task.endedAt! - task.createdAt), 0)
  const stages = turnoverStageTimes(
    tasks.map((task) => ({ taskId: task.taskId, createdAt: task.createdAt, endedAt: task.endedAt! })),
    (taskId) => marks.get(taskId) ?? {}
  )
  return { gaps, stages, utilisation: busy / (3 * (last - first)), jobs, seconds: (last - first) / 1000 }
}

/** Per task: when its first TASK_END went out and was answered (the simulator's ledger), and its job's claim and end (the job row). */
async function jobMarks(sql: Service['sql'], jobTable: string, ledger: SimulatorLedger): Promise<Map<string, TurnoverMarks>> {
  const rows = await sql.unsafe<{ task_id: string; claimed_ms: number; finished_ms: number }[]>(
    `select task_id, extract(epoch from claimed_at) * 1000 as claimed_ms, extract(epoch from completed_at) * 1000 as finished_ms
     from ${jobTable} where task_id is not null`
  )
  const marks = new Map<string, TurnoverMarks>()
  for (const row of rows) marks.set(row.task_id, { claimedAt: Number(row.claimed_ms), finishedAt: Number(row.finished_ms) })
  for (const attempt of ledger.callbacks) {
    const mark = marks.get(attempt.taskId)
    if (!mark || mark.callback || attempt.event !== 'TASK_END' || attempt.status !== 200) continue
    mark.callback = { sentAt: attempt.at, answeredAt: attempt.at + attempt.durationMs }
  }
  return marks
}

async function webhookThroughput(
  url: string
): Promise<{ requests: number; seconds: number; latencies: number[]; statuses: Map<number, number> }> {
  const key = 'bench-key-webhook-0003'
  const jobs = quick ? 1000 : 4000
  const sim = await startRunningHub({ accounts: [{ apiKey: key, concurrency: 3 }] })
  // Made-up tasks: RunningHub's query knows none of them, so the callbacks are trusted.
  const service = await system(url, sim, [key], { RHPOOL_DISPATCHER: 'false', ...callbackEnv('trusted') })
  const sql = service.sql
  const running = await putJobsInFlight(sql, jobs)
  // Every job gets its callback and one duplicate: half the deliveries are duplicates.
  const deliveries = running.flatMap((job) => {
    const body = successCallback(job.task_id)
    const path = webhookPath(secret, { jobTable: 'upscaler_jobs', jobId: job.id, attempt: 1 })
    return [
      { path, body },
      { path, body },
    ]
  })
  if (!service.url) throw new Error("the webhook benchmark needs rhpool's public listener")
  const { seconds, latencies, statuses } = await postDeliveries(service.url, deliveries, 32)
  const [check] = await sql`select count(*)::int as events from rhpool.job_events`
  if (check!.events !== jobs) throw new Error(`expected ${jobs} terminal events, found ${check!.events}`)
  await service.stop()
  await sim.close()
  return { requests: deliveries.length, seconds, latencies, statuses }
}

const runStarted = performance.now()
printHeader('rhpool dispatcher and webhook, end to end', `npx tsx bench/pipeline.ts ${process.argv.slice(2).join(' ')}`.trimEnd())
await withThrowawayCluster('pipeline', async (cluster) => {
  const fresh = async (name: string) => {
    const url = await cluster.createDatabase(name)
    await migrate(url)
    return url
  }
  const insert = summarize(await insertToSubmission(await fresh('insert')))
  const turn = await turnover(await fresh('turnover'))
  const gap = summarize(turn.gaps)
  const hooks = await webhookThroughput(await fresh('webhooks'))
  const hook = summarize(hooks.latencies)

  console.log(
    `\ncallbacks: ${callbacks} in parts 1 and 2, trusted in part 3; RunningHub's simulator: ${simulatorPlace === 'separate' ? 'in a process of its own' : "in rhpool's process"}`
  )
  console.log('\n1. insert → submission at RunningHub, slot free (NOTIFY path)')
  console.log(
    formatTable(
      [
        { header: 'runs', align: 'right' },
        { header: 'p50 ms', align: 'right' },
        { header: 'p95 ms', align: 'right' },
        { header: 'p99 ms', align: 'right' },
        { header: 'max ms', align: 'right' },
      ],
      [[whole(insert.count), fixed(insert.p50Ms), fixed(insert.p95Ms), fixed(insert.p99Ms), fixed(insert.maxMs)]]
    )
  )
  console.log('\n2. slot turnover: task ends → callback → next job submitted on the freed slot (1 account × 3 slots, 100 ms tasks)')
  console.log(
    formatTable(
      [
        { header: 'jobs', align: 'right' },
        { header: 'gap p50 ms', align: 'right' },
        { header: 'gap p99 ms', align: 'right' },
        { header: 'slot utilisation', align: 'right' },
        { header: 'jobs/s', align: 'right' },
      ],
      [[whole(turn.jobs), fixed(gap.p50Ms), fixed(gap.p99Ms), `${fixed(turn.utilisation * 100, 1)}%`, fixed(turn.jobs / turn.seconds, 1)]]
    )
  )
  console.log('\n   where the gap goes (each stage from the one before; the stages of one gap add up to it)')
  console.log(
    formatTable(
      [
        { header: 'stage, ending when', align: 'left' },
        { header: 'p50 ms', align: 'right' },
        { header: 'p99 ms', align: 'right' },
        { header: 'gaps', align: 'right' },
      ],
      turnoverStages.map((stage) => {
        const times = summarize(turn.stages.get(stage)!)
        return [stage, fixed(times.p50Ms), fixed(times.p99Ms), whole(times.count)]
      })
    )
  )
  console.log('\n3. webhook deliveries (half of them duplicates), 32 concurrent senders, callbacks trusted')
  console.log(
    formatTable(
      [
        { header: 'deliveries', align: 'right' },
        { header: 'per second', align: 'right' },
        { header: 'p50 ms', align: 'right' },
        { header: 'p99 ms', align: 'right' },
        { header: 'statuses' },
      ],
      [
        [
          whole(hooks.requests),
          whole(hooks.requests / hooks.seconds),
          fixed(hook.p50Ms),
          fixed(hook.p99Ms),
          [...hooks.statuses].map(([s, n]) => `${s}×${n}`).join(' '),
        ],
      ]
    )
  )
})
console.log(`\nload average at end: ${loadAverage()}; total wall time: ${((performance.now() - runStarted) / 1000).toFixed(1)} s`)
