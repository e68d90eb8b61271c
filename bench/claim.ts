// Benchmark of rhpool.claim_account_slot(): latency and throughput of a claim
// at several queue depths and account counts, one concurrent figure, and the
// plan of one claim at the deepest queue. Runs on its own throwaway cluster.
//
//   npx tsx bench/claim.ts            # 1k, 100k, 1M queued × 1, 5, 100 accounts (~10 min on 2 cores)
//   npx tsx bench/claim.ts --quick    # 1k and 100k only, shorter cases (~2 min)
//   npx tsx bench/claim.ts --help
import { cpus, totalmem } from 'node:os'
import { applySqlFiles, connect, fillQueueTo, prepareDatabase, queueDepth, slotsHeld, useAccounts, type Sql } from './lib/bench-database.ts'
import { BadArgument, readCommandLine, wholeNumber, wholeNumbers } from './lib/command-line.ts'
import { measureConcurrentClaims, measureSequentialClaims } from './lib/claim-loop.ts'
import { explainOneClaim, type ClaimPlanReport } from './lib/claim-plan.ts'
import { summarize, type LatencySummary } from './lib/latency-stats.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'

const usage = `Usage: npx tsx bench/claim.ts [options]

  --queued LIST              queue depths to measure (default 1000,100000,1000000)
  --accounts LIST            account counts to measure at each depth (default 1,5,100)
  --slots N                  slots per account (default 3)
  --iterations N             timed claims per depth × accounts (default 300)
  --case-seconds N           time budget of one depth × accounts case; a case stops
                             at --iterations claims or this budget, whichever first (default 25)
  --warmup N                 untimed claims before them (default 10)
  --connections N            clients of the concurrent run; 0 skips it (default 8)
  --concurrent-seconds N     length of the concurrent run (default 10)
  --concurrent-queued N      depth of the concurrent run; must be in --queued (default 100000)
  --concurrent-accounts N    accounts of the concurrent run (default 5)
  --explain-accounts N       accounts during the EXPLAIN claim at the deepest queue (default 5)
  --apply FILE               SQL applied over rhpool's schema in the throwaway database,
                             to measure a candidate db/functions change (repeatable)
  --quick                    1000,100000 only, 100 iterations, 10 s cases, 5 s concurrent run
  --help                     this text`

interface Options {
  depths: number[]
  accountCounts: number[]
  slotsPerAccount: number
  iterations: number
  caseSeconds: number
  warmup: number
  connections: number
  concurrentSeconds: number
  concurrentDepth: number
  concurrentAccounts: number
  explainAccounts: number
  applyFiles: string[]
}

function readOptions(): Options {
  return readCommandLine({
    script: 'bench/claim.ts',
    usage,
    options: {
      queued: { type: 'string' },
      accounts: { type: 'string', default: '1,5,100' },
      slots: { type: 'string', default: '3' },
      iterations: { type: 'string' },
      'case-seconds': { type: 'string' },
      warmup: { type: 'string', default: '10' },
      connections: { type: 'string', default: '8' },
      'concurrent-seconds': { type: 'string' },
      'concurrent-queued': { type: 'string', default: '100000' },
      'concurrent-accounts': { type: 'string', default: '5' },
      'explain-accounts': { type: 'string', default: '5' },
      apply: { type: 'string', multiple: true, default: [] },
      quick: { type: 'boolean', default: false },
    },
    read(values) {
      const quick = values.quick
      const options: Options = {
        depths: wholeNumbers('queued', values.queued ?? (quick ? '1000,100000' : '1000,100000,1000000')).sort((a, b) => a - b),
        accountCounts: wholeNumbers('accounts', values.accounts),
        slotsPerAccount: wholeNumber('slots', values.slots),
        iterations: wholeNumber('iterations', values.iterations ?? (quick ? '100' : '300')),
        caseSeconds: wholeNumber('case-seconds', values['case-seconds'] ?? (quick ? '10' : '25')),
        warmup: wholeNumber('warmup', values.warmup, 0),
        connections: wholeNumber('connections', values.connections, 0),
        concurrentSeconds: wholeNumber('concurrent-seconds', values['concurrent-seconds'] ?? (quick ? '5' : '10')),
        concurrentDepth: wholeNumber('concurrent-queued', values['concurrent-queued']),
        concurrentAccounts: wholeNumber('concurrent-accounts', values['concurrent-accounts']),
        explainAccounts: wholeNumber('explain-accounts', values['explain-accounts']),
        applyFiles: values.apply,
      }
      const mostSlots = Math.max(...options.accountCounts, options.concurrentAccounts, options.explainAccounts) * options.slotsPerAccount
      if (mostSlots > 10_000)
        throw new BadArgument(`--accounts × --slots must stay <= 10000 (claim_account_slot's max_jobs), got ${mostSlots}`)
      return options
    },
  })
}

interface SequentialRow {
  depth: number
  accounts: number
  freeSlots: number
  latency: LatencySummary
  jobsClaimed: number
  shortClaims: number
  stoppedByBudget: boolean
}

interface ConcurrentRow {
  depth: number
  accounts: number
  connections: number
  latency: LatencySummary
  jobsClaimed: number
  elapsedSeconds: number
}

const plural = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? '' : 's'}`

const seconds = (startedMs: number): string => `${((performance.now() - startedMs) / 1000).toFixed(1)} s`

/** After each measurement the pool must be back where it started: no slot held, same depth. */
async function checkSteadyState(sql: Sql, depth: number): Promise<void> {
  const [held, queued] = [await slotsHeld(sql), await queueDepth(sql)]
  if (held !== 0 || queued !== depth) {
    console.warn(`  WARNING: expected 0 slots held and ${depth} queued, found ${held} held and ${queued} queued`)
  }
}

async function measureDepth(sql: Sql, depth: number, options: Options): Promise<SequentialRow[]> {
  const rows: SequentialRow[] = []
  for (const accounts of options.accountCounts) {
    const started = performance.now()
    const freeSlots = accounts * options.slotsPerAccount
    await useAccounts(sql, accounts, options.slotsPerAccount)
    const run = await measureSequentialClaims(sql, {
      freeSlots,
      iterations: options.iterations,
      warmup: options.warmup,
      budgetSeconds: options.caseSeconds,
    })
    rows.push({
      depth,
      accounts,
      freeSlots,
      latency: summarize(run.latenciesMs),
      jobsClaimed: run.jobsClaimed,
      shortClaims: run.shortClaims,
      stoppedByBudget: run.stoppedByBudget,
    })
    const budgetNote = run.stoppedByBudget ? ` (stopped by the ${options.caseSeconds} s budget)` : ''
    console.log(
      `  ${plural(accounts, 'account')} (${freeSlots} free slots): ${plural(run.latenciesMs.length, 'timed claim')} in ${seconds(started)}${budgetNote}`
    )
    await checkSteadyState(sql, depth)
  }
  return rows
}

async function measureConcurrency(url: string, sql: Sql, options: Options): Promise<ConcurrentRow> {
  const started = performance.now()
  await useAccounts(sql, options.concurrentAccounts, options.slotsPerAccount)
  const run = await measureConcurrentClaims(url, options.connections, options.concurrentSeconds)
  console.log(
    `  ${plural(options.connections, 'connection')} × 1 job, ${plural(options.concurrentAccounts, 'account')}: ${run.jobsClaimed} claims in ${seconds(started)}`
  )
  await checkSteadyState(sql, options.concurrentDepth)
  return {
    depth: options.concurrentDepth,
    accounts: options.concurrentAccounts,
    connections: options.connections,
    latency: summarize(run.latenciesMs),
    jobsClaimed: run.jobsClaimed,
    elapsedSeconds: run.elapsedSeconds,
  }
}

function printSequential(rows: SequentialRow[]): void {
  console.log('\nClaim latency, one connection, each claim fills every free slot (client-side, ms):\n')
  console.log(
    formatTable(
      [
        { header: 'queued', align: 'right' },
        { header: 'accounts', align: 'right' },
        { header: 'jobs/claim', align: 'right' },
        { header: 'claims', align: 'right' },
        { header: 'mean', align: 'right' },
        { header: 'p50', align: 'right' },
        { header: 'p95', align: 'right' },
        { header: 'p99', align: 'right' },
        { header: 'max', align: 'right' },
        { header: 'claims/s', align: 'right' },
        { header: 'jobs/s', align: 'right' },
      ],
      rows.map((row) => {
        const claimSeconds = (row.latency.meanMs * row.latency.count) / 1000
        return [
          whole(row.depth),
          String(row.accounts),
          String(row.freeSlots),
          `${row.latency.count}${row.stoppedByBudget ? '*' : ''}`,
          fixed(row.latency.meanMs),
          fixed(row.latency.p50Ms),
          fixed(row.latency.p95Ms),
          fixed(row.latency.p99Ms),
          fixed(row.latency.maxMs),
          whole(row.latency.count / claimSeconds),
          whole(row.jobsClaimed / claimSeconds),
        ]
      })
    )
  )
  if (rows.some((row) => row.stoppedByBudget))
    console.log('\n* stopped by the per-case time budget (--case-seconds) before --iterations claims')
  console.log('claims/s and jobs/s count claim-call time only (the untimed cancel + refill between claims is excluded).')
  const short = rows.filter((row) => row.shortClaims > 0)
  for (const row of short)
    console.warn(`WARNING: ${row.shortClaims} claims at ${row.depth} queued / ${row.accounts} accounts returned fewer jobs than free slots`)
}

function printConcurrent(row: ConcurrentRow): void {
  console.log(
    `\nConcurrent: ${row.connections} connections, each claiming 1 job then freeing it (cancel + refill), ${whole(row.depth)} queued, ${row.accounts} accounts:\n`
  )
  console.log(
    formatTable(
      [
        { header: 'connections', align: 'right' },
        { header: 'claims', align: 'right' },
        { header: 'seconds', align: 'right' },
        { header: 'jobs/s', align: 'right' },
        { header: 'claim p50', align: 'right' },
        { header: 'claim p95', align: 'right' },
        { header: 'claim p99', align: 'right' },
      ],
      [
        [
          String(row.connections),
          whole(row.jobsClaimed),
          fixed(row.elapsedSeconds, 1),
          whole(row.jobsClaimed / row.elapsedSeconds),
          fixed(row.latency.p50Ms),
          fixed(row.latency.p95Ms),
          fixed(row.latency.p99Ms),
        ],
      ]
    )
  )
}

function printPlan(depth: number, accounts: number, report: ClaimPlanReport): void {
  console.log(
    `\nEXPLAIN (ANALYZE, BUFFERS) of one claim at ${whole(depth)} queued, ${accounts} accounts, via auto_explain (nested statements):`
  )
  console.log(`  claimed ${report.claimed} of ${report.freeSlots} free slots in ${fixed(report.claimMs)} ms (instrumented)`)
  const scan = report.queueScan
  if (!scan) {
    console.log('  the queue scan was not found in the logged plans')
  } else {
    const verdict = scan.rowsRead === report.freeSlots ? 'exactly as many as free slots' : `free slots: ${report.freeSlots}`
    console.log(
      `  queue scan read ${scan.rowsRead} of ${whole(depth)} rows (${verdict}), ${scan.rowsRemovedByFilter} removed by filter, ${scan.sharedBlocks} shared buffers touched\n`
    )
    console.log(
      scan.plan
        .split('\n')
        .map((line) => `    ${line}`)
        .join('\n')
    )
  }
  console.log('\n  Statements inside the claim, slowest first (trigger statements run once per claimed job; a')
  console.log('  statement\'s time includes the triggers it fired; "rows scanned" counts table rows read, filtered or not):\n')
  console.log(
    formatTable(
      [
        { header: 'calls', align: 'right' },
        { header: 'total ms', align: 'right' },
        { header: 'rows scanned', align: 'right' },
        { header: 'scans' },
        { header: 'statement' },
      ],
      report.statements.map((s) => [String(s.calls), fixed(s.totalMs, 3), whole(s.rowsScanned), s.scans, s.text])
    )
  )
}

async function main(): Promise<void> {
  const options = readOptions()
  const runStarted = performance.now()
  console.log(`rhpool claim benchmark — ${new Date().toISOString()}`)
  console.log(`command: npx tsx bench/claim.ts ${process.argv.slice(2).join(' ')}`.trimEnd())
  console.log(
    `machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
  )

  await withThrowawayCluster('bench-claim', async (cluster) => {
    const url = await cluster.createDatabase('bench')
    await prepareDatabase(url)
    if (options.applyFiles.length > 0) {
      await applySqlFiles(url, options.applyFiles)
      console.log(`CANDIDATE SQL applied over the repository's schema: ${options.applyFiles.join(', ')}`)
    }
    const sql = connect(url)
    try {
      const [server] =
        await sql`select current_setting('server_version') as version, current_setting('fsync') as fsync, current_setting('shared_buffers') as shared_buffers`
      console.log(`PostgreSQL ${server!.version} (throwaway cluster, fsync=${server!.fsync}, shared_buffers=${server!.shared_buffers})`)

      const sequential: SequentialRow[] = []
      let concurrent: ConcurrentRow | undefined
      let plan: ClaimPlanReport | undefined
      for (const depth of options.depths) {
        const fillStarted = performance.now()
        const filled = await fillQueueTo(url, depth)
        console.log(`\nqueue filled to ${whole(filled)} jobs in ${seconds(fillStarted)} (with vacuum analyze)`)
        sequential.push(...(await measureDepth(sql, depth, options)))
        if (depth === options.concurrentDepth && options.connections > 0) concurrent = await measureConcurrency(url, sql, options)
        if (depth === options.depths[options.depths.length - 1]) {
          await useAccounts(sql, options.explainAccounts, options.slotsPerAccount)
          plan = await explainOneClaim(url, options.explainAccounts * options.slotsPerAccount)
          await checkSteadyState(sql, depth)
        }
      }

      printSequential(sequential)
      if (concurrent) printConcurrent(concurrent)
      else if (options.connections > 0)
        console.log(`\n(concurrent run skipped: --concurrent-queued ${options.concurrentDepth} is not one of --queued)`)
      if (plan) printPlan(options.depths[options.depths.length - 1]!, options.explainAccounts, plan)
    } finally {
      await sql.end({ timeout: 5 })
    }
  })
  console.log(`\ntotal wall time: ${seconds(runStarted)}`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
