// What keeping the queue's counts costs PostgreSQL per job
// (db/functions/025-queue-counts.sql): the CPU time of the one backend that
// runs each case, with the counting triggers on and off, alternately.
//
//   * insert: one queued job per transaction (a client's INSERT);
//   * claim:  claim_account_slot() takes one job per transaction (then the job
//             is cancelled, a move that is no queue move, so slots stay free);
//   * bulk:   one INSERT ... SELECT of many jobs (one transaction).
//
// "off" disables the three triggers on rhpool.runs (the counts then drift,
// which is fine for a measurement and nothing else). "on" includes the folds of
// the journal into the counts, on the same backend: one per 500 transactions
// (what a dispatcher's fold every second sees at 500 moves a second) and one at
// the end of the case.
//
//   npx tsx bench/queue-counts.ts
//   npx tsx bench/queue-counts.ts --help
import { readFileSync } from 'node:fs'
import { connect, prepareDatabase, useAccounts, useFileInputs } from './lib/bench-database.ts'
import { readCommandLine, wholeNumber } from './lib/command-line.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'

const usage = `Usage: npx tsx bench/queue-counts.ts [options]

  --jobs N        transactions per single-job case and round (default 3000)
  --bulk N        jobs in the bulk INSERT case (default 20000)
  --queued N      jobs queued before the cases start (default 100000)
  --rounds N      rounds, each running every case with the counts on and off (default 3)
  --help          this text`

const options = readCommandLine({
  script: 'bench/queue-counts.ts',
  usage,
  options: {
    jobs: { type: 'string', default: '3000' },
    bulk: { type: 'string', default: '20000' },
    queued: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
  },
  read: (values) => ({
    jobs: wholeNumber('jobs', values.jobs),
    bulk: wholeNumber('bulk', values.bulk),
    queued: wholeNumber('queued', values.queued, 0),
    rounds: wholeNumber('rounds', values.rounds),
  }),
})

const ticksPerSecond = 100
const triggers = ['runs_queue_insert', 'runs_queue_update', 'runs_queue_delete']

/** CPU seconds (user + system) a backend has used. */
function backendCpu(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond
}

type Sql = ReturnType<typeof connect>
type Case = {
  name: string
  jobs: (o: typeof options) => number
  run: (sql: Sql, o: typeof options, foldNow: (i: number) => Promise<void>) => Promise<void>
}

const cases: Case[] = [
  {
    name: 'insert: 1 queued job per transaction',
    jobs: (o) => o.jobs,
    run: async (sql, o, foldNow) => {
      for (let i = 0; i < o.jobs; i++) {
        await sql`insert into upscaler_jobs (input_file_name, status) values ('in.png', 'queued')`
        await foldNow(i)
      }
    },
  },
  {
    name: 'claim: 1 job per transaction (claim_account_slot)',
    jobs: (o) => o.jobs,
    run: async (sql, o, foldNow) => {
      for (let i = 0; i < o.jobs; i++) {
        const [c] = await sql`select job_table, job_id from rhpool.claim_account_slot(1, 'bench', 60)`
        if (c) await sql`select rhpool.cancel_job(${c.job_table}, ${c.job_id}, 'bench')`
        await foldNow(i)
      }
    },
  },
  {
    name: 'bulk: one INSERT ... SELECT',
    jobs: (o) => o.bulk,
    run: async (sql, o) => {
      await sql`insert into upscaler_jobs (input_file_name, status) select 'in.png', 'queued' from generate_series(1, ${o.bulk})`
    },
  },
]

// The claim case's cancels are timed too: they cost the same with the counts on and
// off (a claimed job's cancel is no queue move), so the difference is the claim's.
printHeader('Cost of the queue counts per job', `npx tsx bench/queue-counts.ts ${process.argv.slice(2).join(' ')}`.trim())
const started = performance.now()
await withThrowawayCluster('queue-counts', async (cluster) => {
  const url = await cluster.createDatabase('bench')
  await prepareDatabase(url)
  const sql = connect(url)
  try {
    await useFileInputs(sql)
    await useAccounts(sql, 1, 10)
    if (options.queued > 0) await sql`select bench.add_queued_jobs(${options.queued})`
    await sql`vacuum analyze`
    const [{ pid }] = (await sql`select pg_backend_pid() as pid`) as unknown as [{ pid: number }]
    const counts = async (on: boolean) => {
      for (const trigger of triggers) await sql.unsafe(`alter table rhpool.runs ${on ? 'enable' : 'disable'} trigger ${trigger}`)
    }
    const figures = new Map<string, { on: number[]; off: number[] }>()
    for (let round = 1; round <= options.rounds; round++) {
      for (const c of cases) {
        // Alternate which goes first, so a machine getting busier favours neither.
        for (const on of round % 2 === 1 ? [true, false] : [false, true]) {
          await counts(on)
          // The same start each time: the claims leave dead index entries at the head of
          // the queue, which every later claim would step over until autovacuum came.
          await sql`vacuum rhpool.runs, rhpool.queue_counts, rhpool.queue_journal`
          const foldNow = async (i: number): Promise<void> => {
            if (on && i % 500 === 499) await sql`select rhpool.fold_queue_journal()`
          }
          const before = backendCpu(pid)
          await c.run(sql, options, foldNow)
          if (on) await sql`select rhpool.fold_queue_journal()`
          const microseconds = ((backendCpu(pid) - before) * 1e6) / c.jobs(options)
          const entry = figures.get(c.name) ?? { on: [], off: [] }
          entry[on ? 'on' : 'off'].push(microseconds)
          figures.set(c.name, entry)
        }
      }
      console.log(`round ${round} done (load ${loadAverage()})`)
    }
    await counts(true)
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
    console.log(`\nBackend CPU per job (µs; median of ${options.rounds} rounds; ${whole(options.queued)} queued before):\n`)
    console.log(
      formatTable(
        [
          { header: 'case' },
          { header: 'jobs', align: 'right' },
          { header: 'counts off', align: 'right' },
          { header: 'counts on', align: 'right' },
          { header: 'added', align: 'right' },
          { header: 'added %', align: 'right' },
        ],
        cases.map((c) => {
          const f = figures.get(c.name)!
          const off = median(f.off)
          const on = median(f.on)
          return [c.name, whole(c.jobs(options)), fixed(off, 0), fixed(on, 0), fixed(on - off, 0), fixed(((on - off) / off) * 100, 0)]
        })
      )
    )
  } finally {
    await sql.end({ timeout: 5 })
  }
})
console.log(`\nload average at end: ${loadAverage()}; total ${fixed((performance.now() - started) / 1000, 0)} s`)
