// Where PostgreSQL spends its time per job: N jobs through rhpool's whole path
// (insert, claim, submission to the simulator, callback, completion), with
// pg_stat_statements tracking nested statements too (the SQL inside rhpool's
// functions and triggers), then the statements that cost most, per job.
// Profile before removing work: this is the measurement the cost goals of
// bench/README.md ("Cost per job") start from.
//
//   npx tsx bench/profile.ts                     # 3000 jobs, 4 inserting clients, callbacks confirmed
//   npx tsx bench/profile.ts --callbacks trusted --top 40
import { migrate } from '../src/db/migrate.ts'
import { connect } from './lib/bench-database.ts'
import { callbackMode, readCommandLine, wholeNumber } from './lib/command-line.ts'
import { cpuSince, sampleCpu } from './lib/cpu-usage.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { startInProcessPool, waitUntil } from './lib/rhpool-in-process.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'

const usage = `Usage: npx tsx bench/profile.ts [options]

  --jobs N             jobs measured (default 3000)
  --warmup N           untimed jobs first (default 300)
  --insert-clients N   clients inserting one job per statement at once (default 4)
  --accounts N         accounts (default 4)
  --slots N            slots per account (default 25)
  --top N              statements listed (default 30)
  --callbacks MODE     confirmed (each callback checked with RunningHub's query) or trusted (default confirmed)
  --help               this text`

const options = readCommandLine({
  script: 'bench/profile.ts',
  usage,
  options: {
    jobs: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '300' },
    'insert-clients': { type: 'string', default: '4' },
    accounts: { type: 'string', default: '4' },
    slots: { type: 'string', default: '25' },
    top: { type: 'string', default: '30' },
    callbacks: { type: 'string', default: 'confirmed' },
  },
  read: (values) => ({
    jobs: wholeNumber('jobs', values.jobs),
    warmup: wholeNumber('warmup', values.warmup, 0),
    insertClients: wholeNumber('insert-clients', values['insert-clients']),
    accounts: wholeNumber('accounts', values.accounts),
    slots: wholeNumber('slots', values.slots),
    top: wholeNumber('top', values.top),
    callbacks: callbackMode(values.callbacks),
  }),
})

interface StatementRow {
  query: string
  calls: string
  total_ms: number
  plan_ms: number
  rows: string
  toplevel: boolean
}

async function main(): Promise<void> {
  printHeader('rhpool: PostgreSQL time per job, by statement', `npx tsx bench/profile.ts ${process.argv.slice(2).join(' ')}`.trimEnd())
  await withThrowawayCluster(
    'profile',
    async (cluster) => {
      const url = await cluster.createDatabase('rhpool_profile')
      await migrate(url)
      const sql = connect(url)
      await sql`create extension if not exists pg_stat_statements`
      const pool = await startInProcessPool({
        databaseUrl: url,
        accounts: options.accounts,
        slotsPerAccount: options.slots,
        taskDurationMs: 0,
        callbacks: options.callbacks,
      })
      const inserters = connect(url, options.insertClients)
      let stopped = false
      const stop = async (): Promise<void> => {
        if (stopped) return
        stopped = true
        await inserters.end({ timeout: 5 })
        await pool.stop()
      }
      const finished = async (): Promise<number> =>
        Number((await sql`select count(*)::int as n from rhpool.job_events where status = 'completed'`)[0]!.n)
      const run = async (count: number): Promise<void> => {
        const before = await finished()
        let next = 0
        await Promise.all(
          Array.from({ length: options.insertClients }, async () => {
            while (next < count) {
              next++
              await inserters`insert into upscaler_jobs (input_file_name) values ('in.png')`
            }
          })
        )
        await waitUntil(`${count} jobs completed`, async () => (await finished()) - before >= count, 600_000, 50)
      }
      try {
        await run(options.warmup)
        await sql`select pg_stat_statements_reset()`
        const [xactBefore] = await sql`select pg_current_xact_id()::text::bigint as n`
        const cpuBefore = sampleCpu(cluster.dataDir)
        const started = performance.now()
        await run(options.jobs)
        const seconds = (performance.now() - started) / 1000
        const cpu = cpuSince(cpuBefore, cluster.dataDir)
        const [xactAfter] = await sql`select pg_current_xact_id()::text::bigint as n`
        const statements = (await sql`
          select query, calls::text, total_exec_time as total_ms, total_plan_time as plan_ms, rows::text, toplevel
          from pg_stat_statements
          where dbid = (select oid from pg_database where datname = current_database())
          order by total_exec_time desc`) as unknown as StatementRow[]
        const jobs = options.jobs
        const topLevelMs = statements.filter((s) => s.toplevel).reduce((sum, s) => sum + s.total_ms, 0)
        console.log(
          `\n${whole(jobs)} jobs in ${fixed(seconds, 2)} s (${whole(jobs / seconds)} jobs/s); PG CPU ${fixed((cpu.postgres * 1000) / jobs, 3)} ms/job, ` +
            `Node CPU ${fixed((cpu.node * 1000) / jobs, 3)} ms/job; write transactions ${fixed((Number(xactAfter!.n) - Number(xactBefore!.n) - 1) / jobs, 2)}/job; ` +
            `top-level statement time ${fixed(topLevelMs / jobs, 3)} ms/job; load ${loadAverage()}\n`
        )
        console.log(
          formatTable(
            [
              { header: 'level' },
              { header: 'calls/job', align: 'right' },
              { header: 'ms/job', align: 'right' },
              { header: 'ms/call', align: 'right' },
              { header: 'plan ms/job', align: 'right' },
              { header: 'rows/call', align: 'right' },
              { header: 'statement' },
            ],
            statements
              .slice(0, options.top)
              .map((s) => [
                s.toplevel ? 'top' : 'nested',
                fixed(Number(s.calls) / jobs, 2),
                fixed(s.total_ms / jobs, 4),
                fixed(s.total_ms / Number(s.calls), 4),
                fixed(s.plan_ms / jobs, 4),
                fixed(Number(s.rows) / Number(s.calls), 1),
                s.query.replace(/\s+/g, ' ').slice(0, 110),
              ])
          )
        )
        console.log(
          '\nNested statements are counted inside the top-level call that ran them too: the top-level total is the one to add up.\n' +
            "ms/job is execution; plan ms/job is planning (track_planning), which a nested statement's caller pays inside its own execution"
        )
        // A backend reports its table counts when it ends (or idles a while): stop the pool first.
        await stop()
        const [rows] = await sql`
          select n_tup_upd::integer as updates, n_tup_hot_upd::integer as heap_only,
                 pg_indexes_size('public.upscaler_jobs')::bigint as index_bytes
          from pg_stat_user_tables where schemaname = 'public' and relname = 'upscaler_jobs'`
        console.log(
          `job row updates (warm-up included): ${whole(rows!.updates)}, heap-only ${whole(rows!.heap_only)} ` +
            `(${fixed((100 * rows!.heap_only) / Math.max(1, rows!.updates), 1)}%; at most 3 of a job's 4 can be: the running step writes the indexed task_id); ` +
            `the job table's indexes ${fixed(Number(rows!.index_bytes) / (options.warmup + options.jobs), 0)} bytes per job`
        )
      } finally {
        await stop()
        await sql.end({ timeout: 5 })
      }
    },
    {
      preloadLibraries: ['pg_stat_statements'],
      settings: ['pg_stat_statements.track=all', 'pg_stat_statements.track_planning=on', 'pg_stat_statements.max=5000'],
    }
  )
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  process.exitCode = 1
})
