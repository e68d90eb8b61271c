// Throughput side by side, same PostgreSQL cluster, same run:
//   graphile-worker processing N no-op jobs (a local function call per job), and
//   rhpool running N jobs through its whole path: claim under the admission lock
//   (each job's run takes a slot, capped), POST to the RunningHub simulator (zero
//   task time), the simulator's callback to rhpool's webhook route (held and
//   confirmed with the simulator's query, or with --callbacks trusted applied as
//   sent), the job completed, its run ended and its terminal event written.
// Both run in this process; each has its own database on one throwaway cluster.
// Time = from the first insert to the moment every job is done in the database.
//
//   npx tsx bench/versus-graphile-worker.ts            # 5000 jobs per run, both insert modes
//   npx tsx bench/versus-graphile-worker.ts --quick    # 1000 jobs per run
//   npx tsx bench/versus-graphile-worker.ts --help
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker'
import { migrate } from '../src/db/migrate.ts'
import { connect, type Sql } from './lib/bench-database.ts'
import { callbackMode, readCommandLine, someOf, wholeNumber } from './lib/command-line.ts'
import { cpuSince, sampleCpu, type CpuSpent } from './lib/cpu-usage.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { startInProcessPool, waitUntil, type InProcessPool } from './lib/rhpool-in-process.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'

const usage = `Usage: npx tsx bench/versus-graphile-worker.ts [options]

  --jobs N              jobs per measured run (default 5000; --quick 1000)
  --warmup N            untimed jobs before each measured run (default 300; --quick 100)
  --modes LIST          insert modes: batch (500 jobs per statement, one client) and/or
                        single (one job per statement, --insert-clients at once) (default batch,single)
  --rounds N            repeat every (mode × system) run N times, alternating systems (default 1)
  --gw-concurrency N    graphile-worker's concurrency (default 8)
  --gw-variants LIST    plain (its defaults: one job fetched and completed per round trip) and/or
                        batched (localQueue of 4 × concurrency jobs, completeJobBatchDelay 0)
                        (default plain,batched)
  --accounts N          rhpool accounts (default 4)
  --slots N             slots per account (default 25): 4 × 25 = 100 slots, so the limit is not what bounds it
  --insert-clients N    concurrent inserting clients in single mode (default 4)
  --max-submissions N   rhpool's RHPOOL_MAX_CONCURRENT_SUBMISSIONS (default: rhpool's own, 32)
  --callbacks MODE      confirmed (rhpool's default: each callback checked with RunningHub's query
                        before it finishes the job) or trusted (applied as sent, as when the first
                        figures of bench/README.md were measured) (default confirmed)
  --quick               1000 jobs, 100 warm-up
  --help                this text`

type Mode = 'batch' | 'single'
type GwVariant = 'plain' | 'batched'
const options = readCommandLine({
  script: 'bench/versus-graphile-worker.ts',
  usage,
  options: {
    jobs: { type: 'string' },
    warmup: { type: 'string' },
    modes: { type: 'string', default: 'batch,single' },
    rounds: { type: 'string', default: '1' },
    'gw-concurrency': { type: 'string', default: '8' },
    'gw-variants': { type: 'string', default: 'plain,batched' },
    accounts: { type: 'string', default: '4' },
    slots: { type: 'string', default: '25' },
    'insert-clients': { type: 'string', default: '4' },
    'max-submissions': { type: 'string' },
    callbacks: { type: 'string', default: 'confirmed' },
    quick: { type: 'boolean', default: false },
  },
  read: (values) => ({
    jobs: wholeNumber('jobs', values.jobs ?? (values.quick ? '1000' : '5000')),
    warmup: wholeNumber('warmup', values.warmup ?? (values.quick ? '100' : '300')),
    modes: someOf<Mode>('modes', values.modes, ['batch', 'single']),
    rounds: wholeNumber('rounds', values.rounds),
    gwConcurrency: wholeNumber('gw-concurrency', values['gw-concurrency']),
    gwVariants: someOf<GwVariant>('gw-variants', values['gw-variants'], ['plain', 'batched']),
    accounts: wholeNumber('accounts', values.accounts),
    slots: wholeNumber('slots', values.slots),
    insertClients: wholeNumber('insert-clients', values['insert-clients']),
    maxSubmissions: values['max-submissions'] === undefined ? undefined : wholeNumber('max-submissions', values['max-submissions']),
    callbacks: callbackMode(values.callbacks),
  }),
})

const batchSize = 500
const pollMs = 20

/** One system under test: how it takes jobs, and how many it has finished. */
interface System {
  name: string
  /** Inserts jobs [0, count) the way the mode says. */
  insert(mode: Mode, count: number): Promise<void>
  /** Jobs finished since `mark()` (one query; counted as a poll). */
  finishedSinceMark(): Promise<number>
  mark(): Promise<void>
  /** Transaction ids handed out in the cluster so far: one per writing transaction. */
  transactions(): Promise<number>
  /** Anything per job worth printing after a run (HTTP calls, checks). */
  afterRun?(jobs: number): Promise<string>
}

interface RunResult {
  system: string
  mode: Mode
  round: number
  jobs: number
  insertSeconds: number
  totalSeconds: number
  cpu: CpuSpent
  transactionsPerJob: number
  note: string
  load: string
}

/** Runs `count` inserts: in batches from one client, or one by one from several clients at once. */
async function insertJobs(
  mode: Mode,
  count: number,
  clients: number,
  batch: (size: number) => Promise<unknown>,
  one: () => Promise<unknown>
): Promise<void> {
  if (mode === 'batch') {
    for (let done = 0; done < count; done += batchSize) await batch(Math.min(batchSize, count - done))
    return
  }
  let next = 0
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < count) {
        next++
        await one()
      }
    })
  )
}

/**
 * Every transaction that writes gets a transaction id, cluster-wide, at its
 * first write (read-only ones, like the benchmark's polls, get none). The call
 * itself takes one. pg_stat_database's commit counters would include the
 * read-only ones and lag by up to 10 s.
 */
async function transactionsOf(sql: Sql): Promise<number> {
  const [row] = await sql`select pg_current_xact_id()::text::bigint as n`
  return Number(row!.n)
}

async function measure(system: System, mode: Mode, count: number, dataDir: string, round: number): Promise<RunResult> {
  await system.mark()
  const transactionsBefore = await system.transactions()
  const cpuBefore = sampleCpu(dataDir)
  const started = performance.now()
  const inserting = system.insert(mode, count).then(() => performance.now())
  let done = 0
  while (done < count) {
    await new Promise((resolve) => setTimeout(resolve, pollMs))
    done = await system.finishedSinceMark()
    if (performance.now() - started > 600_000) throw new Error(`${system.name}: ${done} of ${count} jobs done after 10 minutes`)
  }
  const ended = performance.now()
  const insertEnded = await inserting
  const cpu = cpuSince(cpuBefore, dataDir)
  // Minus the id the first pg_current_xact_id() call took for itself.
  const transactions = (await system.transactions()) - transactionsBefore - 1
  const note = system.afterRun ? await system.afterRun(count) : ''
  return {
    system: system.name,
    mode,
    round,
    jobs: count,
    insertSeconds: (insertEnded - started) / 1000,
    totalSeconds: (ended - started) / 1000,
    cpu,
    transactionsPerJob: transactions / count,
    note,
    load: loadAverage(),
  }
}

const silentLogger = new Logger(() => () => {})

async function graphileWorker(url: string, variant: GwVariant): Promise<{ system: System; stop(): Promise<void> }> {
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url, logger: silentLogger, maxPoolSize: options.insertClients + 1 })
  await utils.migrate()
  const runner: Runner = await run({
    connectionString: url,
    concurrency: options.gwConcurrency,
    maxPoolSize: options.gwConcurrency + 2,
    noHandleSignals: true,
    pollInterval: 2000,
    logger: silentLogger,
    taskList: { noop: async () => {} },
    // graphile-worker's own batching (its documentation's "performance" page): the pool
    // fetches and locks many jobs per query, and completions are sent together.
    ...(variant === 'batched' ? { preset: { worker: { localQueue: { size: 4 * options.gwConcurrency }, completeJobBatchDelay: 0 } } } : {}),
  })
  const sql = connect(url)
  let insertedSinceMark = 0
  const system: System = {
    name: `graphile-worker ${variant} (concurrency ${options.gwConcurrency})`,
    async insert(mode, count) {
      await insertJobs(
        mode,
        count,
        options.insertClients,
        (size) => utils.addJobs(Array.from({ length: size }, () => ({ identifier: 'noop', payload: {} }))),
        () => utils.addJob('noop', {})
      )
      insertedSinceMark += count
    },
    async mark() {
      insertedSinceMark = 0
    },
    async finishedSinceMark() {
      // A completed graphile-worker job is deleted; a job not yet inserted is not there either.
      const [row] = await sql`select count(*)::int as n from graphile_worker._private_jobs`
      return row!.n === 0 ? insertedSinceMark : 0
    },
    transactions: () => transactionsOf(sql),
  }
  return {
    system,
    async stop() {
      await runner.stop()
      await utils.release()
      await sql.end({ timeout: 5 })
    },
  }
}

async function rhpool(url: string): Promise<{ system: System; pool: InProcessPool; stop(): Promise<void> }> {
  const pool = await startInProcessPool({
    databaseUrl: url,
    accounts: options.accounts,
    slotsPerAccount: options.slots,
    taskDurationMs: 0,
    callbacks: options.callbacks,
    env: options.maxSubmissions === undefined ? {} : { RHPOOL_MAX_CONCURRENT_SUBMISSIONS: String(options.maxSubmissions) },
  })
  const sql = connect(url)
  const inserters = connect(url, options.insertClients)
  let eventMark = 0
  let submissionMark = 0
  let callbackMark = 0
  const system: System = {
    name: `rhpool (${options.accounts} accounts × ${options.slots} slots, simulator, 0 ms tasks, callbacks ${options.callbacks}${options.maxSubmissions === undefined ? '' : `, ${options.maxSubmissions} submissions at once`})`,
    async insert(mode, count) {
      await insertJobs(
        mode,
        count,
        options.insertClients,
        (size) => inserters`insert into upscaler_jobs (input_file_name) select 'in.png' from generate_series(1, ${size})`,
        () => inserters`insert into upscaler_jobs (input_file_name) values ('in.png')`
      )
    },
    async mark() {
      const [row] = await sql`select coalesce(max(id), 0)::bigint as id from rhpool.job_events`
      eventMark = Number(row!.id)
      submissionMark = pool.sim.ledger.submissions.length
      callbackMark = pool.sim.ledger.callbacks.length
    },
    async finishedSinceMark() {
      const [row] = await sql`select count(*)::int as n from rhpool.job_events where id > ${eventMark}`
      return row!.n as number
    },
    transactions: () => transactionsOf(sql),
    async afterRun(jobs) {
      const [events] =
        await sql`select count(*) filter (where status = 'completed')::int as completed, count(*)::int as all from rhpool.job_events where id > ${eventMark}`
      const submissions = pool.sim.ledger.submissions.length - submissionMark
      const callbacks = pool.sim.ledger.callbacks.length - callbackMark
      const overfilled = pool.sim.ledger.maxConcurrencyAnyKey > options.slots
      const duplicates = pool.sim.ledger.duplicateJobRefs().size
      if (events!.completed !== jobs || overfilled || duplicates > 0) {
        throw new Error(
          `rhpool run not clean: ${events!.completed}/${jobs} completed, max per key ${pool.sim.ledger.maxConcurrencyAnyKey}, ${duplicates} duplicate tasks`
        )
      }
      return `${fixed(submissions / jobs, 2)} create calls + ${fixed(callbacks / jobs, 2)} callbacks per job`
    },
  }
  return {
    system,
    pool,
    async stop() {
      await inserters.end({ timeout: 5 })
      await sql.end({ timeout: 5 })
      await pool.stop()
    },
  }
}

function printResults(results: RunResult[]): void {
  console.log(`\nThroughput, ${whole(options.jobs)} jobs per run, from the first insert to the last job done in the database:\n`)
  console.log(
    formatTable(
      [
        { header: 'system' },
        { header: 'inserts' },
        { header: 'round', align: 'right' },
        { header: 'inserted in s', align: 'right' },
        { header: 'all done in s', align: 'right' },
        { header: 'jobs/s', align: 'right' },
        { header: 'Node CPU ms/job', align: 'right' },
        { header: 'PG CPU ms/job', align: 'right' },
        { header: 'write xacts/job', align: 'right' },
        { header: 'load avg (1/5/15 min)' },
        { header: 'notes' },
      ],
      results.map((r) => [
        r.system,
        r.mode === 'batch' ? `batches of ${batchSize}` : `1 per statement, ${options.insertClients} clients`,
        String(r.round),
        fixed(r.insertSeconds, 2),
        fixed(r.totalSeconds, 2),
        whole(r.jobs / r.totalSeconds),
        fixed((r.cpu.node * 1000) / r.jobs, 3),
        fixed((r.cpu.postgres * 1000) / r.jobs, 3),
        fixed(r.transactionsPerJob, 1),
        r.load,
        r.note,
      ])
    )
  )
  console.log('\nRatio (graphile-worker jobs/s ÷ rhpool jobs/s), per insert mode, round and graphile-worker variant:\n')
  const rows: string[][] = []
  for (const mode of options.modes) {
    for (let round = 1; round <= options.rounds; round++) {
      const rh = results.find((r) => r.mode === mode && r.round === round && r.system.startsWith('rhpool'))
      for (const variant of options.gwVariants) {
        const gw = results.find((r) => r.mode === mode && r.round === round && r.system.startsWith(`graphile-worker ${variant}`))
        if (!gw || !rh) continue
        const gwRate = gw.jobs / gw.totalSeconds
        const rhRate = rh.jobs / rh.totalSeconds
        const perJob = (r: RunResult) => ((r.cpu.node + r.cpu.postgres) * 1000) / r.jobs
        rows.push([
          mode,
          String(round),
          variant,
          whole(gwRate),
          whole(rhRate),
          `${fixed(gwRate / rhRate, 1)}×`,
          `${fixed(perJob(rh) / perJob(gw), 1)}×`,
        ])
      }
    }
  }
  console.log(
    formatTable(
      [
        { header: 'inserts' },
        { header: 'round', align: 'right' },
        { header: 'graphile-worker' },
        { header: 'graphile-worker jobs/s', align: 'right' },
        { header: 'rhpool jobs/s', align: 'right' },
        { header: 'ratio', align: 'right' },
        { header: 'CPU per job, rhpool ÷ gw', align: 'right' },
      ],
      rows
    )
  )
  console.log(`\nNode CPU: this whole process (the benchmark's inserts and polls, plus graphile-worker — or rhpool's dispatcher,
webhook route and the simulator). PG CPU: the whole cluster. write xacts/job: transaction ids the cluster handed out per job
(every transaction that writes takes one; the benchmark's read-only polls take none). Completion is polled every ${pollMs} ms.`)
}

async function main(): Promise<void> {
  const runStarted = performance.now()
  printHeader(
    'rhpool vs graphile-worker throughput',
    `npx tsx bench/versus-graphile-worker.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
  )
  await withThrowawayCluster('versus', async (cluster) => {
    const rhUrl = await cluster.createDatabase('rhpool_bench')
    await migrate(rhUrl)
    // Each graphile-worker variant in its own database, so one's idle polling finds no work of the other's.
    const gws = []
    for (const variant of options.gwVariants)
      gws.push(await graphileWorker(await cluster.createDatabase(`graphile_worker_${variant}`), variant))
    const rh = await rhpool(rhUrl)
    const systems = [...gws.map((g) => g.system), rh.system]
    const results: RunResult[] = []
    try {
      let turn = 0
      for (let round = 1; round <= options.rounds; round++) {
        for (const mode of options.modes) {
          // Rotate which system goes first, so a load change on the machine does not always hit the same one.
          const order = systems.map((_, i) => systems[(i + turn) % systems.length]!)
          turn++
          for (const system of order) {
            await measure(system, mode, options.warmup, cluster.dataDir, 0) // untimed warm-up
            const result = await measure(system, mode, options.jobs, cluster.dataDir, round)
            results.push(result)
            console.log(
              `  ${system.name}, ${mode}: ${whole(result.jobs / result.totalSeconds)} jobs/s (${fixed(result.totalSeconds, 2)} s, load ${result.load})`
            )
          }
        }
      }
    } finally {
      for (const gw of gws) await gw.stop()
      await rh.stop()
    }
    printResults(results)
  })
  console.log(`\nload average at end: ${loadAverage()}; total wall time: ${((performance.now() - runStarted) / 1000).toFixed(1)} s`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  process.exitCode = 1
})
