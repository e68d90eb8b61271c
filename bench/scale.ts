// What a deep queue and many accounts cost: at 1k / 100k / 1M queued jobs and
// 1 / 10 / 100 accounts (3 slots each),
//   1. the claim, called directly: every slot free (a claim fills them all), and
//      the steady state of a busy pool (every slot held but one: a claim of 1 job);
//   2. end to end, through rhpool in-process and the simulator: a job inserted
//      while the queue holds that depth and every slot is busy, measured from its
//      INSERT to its completion (claimed → submitted to the simulator → callback
//      → completed);
//   3. what else reads the queue: a maintenance round, and what GET /status,
//      GET /metrics, GET /jobs/:table/:id and the dashboard call.
//
// End to end, how a sample is taken: the background jobs (the depth) run at the
// simulator for an hour, so once rhpool has filled every slot, the pool is
// saturated and the queue stays at its depth, as in production when work piles
// up. A sample job is inserted at priority 100 (the head of the queue) in the
// same transaction that gives one account one more slot: the slot is free the
// moment the job is visible, as when a task has just ended, so the sample
// measures rhpool's path and not a wait for a slot. Its task takes 0 ms (the
// upscaler's "standard" app), its callback completes it, and a background job
// then takes the slot back (the benchmark waits for that before the next one).
//
//   npx tsx bench/scale.ts            # 1k, 100k, 1M × 1, 10, 100 accounts (~7-9 min on 2 busy cores)
//   npx tsx bench/scale.ts --quick    # 1k and 100k, fewer samples (~2 min)
//   npx tsx bench/scale.ts --help
import {
  addQueuedJobs,
  connect,
  fillQueueTo,
  prepareDatabase,
  queueDepth,
  useAccounts,
  useFileInputs,
  useOnly,
  type Sql,
} from './lib/bench-database.ts'
import { callbackMode, readCommandLine, wholeNumber, wholeNumbers } from './lib/command-line.ts'
import { claimBatch, freeAndRefill, measureSequentialClaims } from './lib/claim-loop.ts'
import { summarize, timed, type LatencySummary } from './lib/latency-stats.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { appIdsByTable, rhpoolAccountName, startInProcessPool, waitUntil, type InProcessPool } from './lib/rhpool-in-process.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'

const usage = `Usage: npx tsx bench/scale.ts [options]

  --queued LIST        queue depths (default 1000,100000,1000000; --quick 1000,100000)
  --accounts LIST      account counts at each depth (default 1,10,100)
  --slots N            slots per account (default 3)
  --claims N           timed claims per claim case (default 100; --quick 40)
  --case-seconds N     time budget of one claim case (default 6; --quick 3)
  --samples N          end-to-end samples per depth × accounts (default 50; --quick 10)
  --callbacks MODE     end to end: confirmed (rhpool's default, checked with RunningHub's query)
                       or trusted (applied as sent, as for the first figures of bench/README.md)
                       (default confirmed)
  --quick              the smaller figures above
  --help               this text`

const options = readCommandLine({
  script: 'bench/scale.ts',
  usage,
  options: {
    queued: { type: 'string' },
    accounts: { type: 'string', default: '1,10,100' },
    slots: { type: 'string', default: '3' },
    claims: { type: 'string' },
    'case-seconds': { type: 'string' },
    samples: { type: 'string' },
    callbacks: { type: 'string', default: 'confirmed' },
    quick: { type: 'boolean', default: false },
  },
  read: (values) => {
    const quick = values.quick
    return {
      depths: wholeNumbers('queued', values.queued ?? (quick ? '1000,100000' : '1000,100000,1000000')).sort((a, b) => a - b),
      accounts: wholeNumbers('accounts', values.accounts),
      slots: wholeNumber('slots', values.slots),
      claims: wholeNumber('claims', values.claims ?? (quick ? '40' : '100')),
      caseSeconds: wholeNumber('case-seconds', values['case-seconds'] ?? (quick ? '3' : '6')),
      samples: wholeNumber('samples', values.samples ?? (quick ? '10' : '50')),
      callbacks: callbackMode(values.callbacks),
    }
  },
})

const backgroundTaskMs = 3_600_000
const samplePriority = 100

interface ClaimRow {
  depth: number
  accounts: number
  allFree: LatencySummary
  allFreeJobs: number
  oneFree: LatencySummary
}

interface EndToEndRow {
  depth: number
  accounts: number
  total: LatencySummary
  toSubmission: LatencySummary
  callbackToDone: LatencySummary
  saturateSeconds: number
  load: string
}

interface DepthCosts {
  depth: number
  /** Accounts in rhpool.accounts when read: status lists every one. */
  accounts: number
  /** Per reader: what it is, and its latencies. */
  readers: Array<{ name: string; latency: LatencySummary }>
}

const seconds = (startedMs: number): string => `${((performance.now() - startedMs) / 1000).toFixed(1)} s`

async function measureClaims(sql: Sql, depth: number, accounts: number): Promise<ClaimRow> {
  await useAccounts(sql, accounts, options.slots)
  const slots = accounts * options.slots
  const budget = { iterations: options.claims, warmup: 5, budgetSeconds: options.caseSeconds }
  const allFree = await measureSequentialClaims(sql, { freeSlots: slots, ...budget })
  // A busy pool: every slot held but one, so each claim finds one free slot.
  const held = slots > 1 ? await claimBatch(sql, slots - 1) : []
  let oneFree
  try {
    oneFree = await measureSequentialClaims(sql, { freeSlots: 1, ...budget })
  } finally {
    await freeAndRefill(sql, held)
  }
  return { depth, accounts, allFree: summarize(allFree.latenciesMs), allFreeJobs: slots, oneFree: summarize(oneFree.latenciesMs) }
}

/** What the pool looks like, for an error message when a sample does not finish. */
async function describeState(sql: Sql, id: string): Promise<string> {
  const [job] = await sql`select status, api_account, attempts, error_code, error_message from upscaler_jobs where id = ${id}`
  const [run] =
    await sql`select status, account, attempts, holder, lease_expires_at, not_before from rhpool.runs where job_table = 'upscaler_jobs' and job_id = ${id}`
  const slots =
    await sql`select account, count(*)::int as held, count(lease_expires_at)::int as leased from rhpool.runs where account is not null group by account order by account`
  const accounts =
    await sql`select name, slots, enabled, cooldown_until, disabled_reason from rhpool.accounts where enabled order by position`
  const [head] =
    await sql`select job_table, priority, fifo_at, not_before from rhpool.runs where status = 'queued' order by priority desc, fifo_at, job_id limit 1`
  return `job ${JSON.stringify(job)}; its run ${JSON.stringify(run ?? null)}; slots ${JSON.stringify(slots)}; enabled accounts ${JSON.stringify(accounts)}; queue head ${JSON.stringify(head)}`
}

/** Every job the pool left in flight fails (bench cleanup), so the next case starts with free slots. */
async function failInFlight(sql: Sql): Promise<void> {
  await sql`select rhpool.fail_job(r.job_table, r.job_id, 'BENCH_CLEANUP', 'scale benchmark: end of case') from rhpool.runs r where r.account is not null`
}

async function measureEndToEnd(url: string, sql: Sql, depth: number, accounts: number, sampleApp: string): Promise<EndToEndRow> {
  const slots = accounts * options.slots
  // The claim cases' accounts (held by the stand-in dispatcher 'bench') take no part: since
  // dispatcher presence (000015) an account left out of a sync stays enabled, so they are
  // disabled, the stand-in holds nothing any more, and only the pool's own accounts count
  // as its capacity.
  await sql`delete from rhpool.dispatchers where holder = 'bench'`
  await useOnly(
    sql,
    Array.from({ length: accounts }, (_, i) => rhpoolAccountName(i + 1))
  )
  const saturateStarted = performance.now()
  const pool: InProcessPool = await startInProcessPool({
    databaseUrl: url,
    accounts,
    slotsPerAccount: options.slots,
    callbacks: options.callbacks,
    // Room at the simulator for the slots the samples add; rhpool's slots are what binds.
    simulatorConcurrency: options.slots + options.samples + 1,
    taskDurationMs: backgroundTaskMs,
    taskDurationByApp: { [sampleApp]: 0 },
    // Each sample gives an account one more slot by hand; a heartbeat declares the
    // configured slots again (000015), taking it back. Within a case, none comes.
    env: { RHPOOL_HEARTBEAT_INTERVAL_MS: '600000' },
  })
  const inFlight = async (): Promise<{ held: number; leased: number; capacity: number }> => {
    const [row] = await sql`select (select count(*)::int from rhpool.runs where account is not null) as held,
                                   (select count(*)::int from rhpool.runs where account is not null and lease_expires_at is not null) as leased,
                                   (select sum(slots)::int from rhpool.accounts where enabled and name = any(${pool.accountNames})) as capacity`
    return row as unknown as { held: number; leased: number; capacity: number }
  }
  // Saturated: every slot holds a background task RunningHub has accepted.
  const saturated = async (): Promise<boolean> => {
    const state = await inFlight()
    return state.held === state.capacity && state.leased === 0
  }
  // A terminal event was written (NOTIFY rhpool_job_events): when, by this process's clock.
  let events = 0
  let lastEventAt = Number.NaN
  const listener = connect(url)
  const subscription = await listener.listen('rhpool_job_events', () => {
    lastEventAt = performance.now()
    events++
  })
  const totals: number[] = []
  const toSubmission: number[] = []
  const callbackToDone: number[] = []
  let saturateSeconds = Number.NaN
  try {
    await waitUntil(`${slots} slots to fill`, saturated, 120_000, 10)
    saturateSeconds = (performance.now() - saturateStarted) / 1000
    for (let i = 0; i < options.samples; i++) {
      const account = pool.accountNames[i % accounts]!
      const eventsBefore = events
      const t0 = performance.now()
      const [job] = await sql`
        with sample as (
          insert into upscaler_jobs (input_file_name, version, priority) values ('in.png', 'standard', ${samplePriority}) returning id
        ), room as (
          update rhpool.accounts set slots = slots + 1 where name = ${account} returning name
        )
        -- Said as a slot given back says it (a task ending: 'slot'): a dispatcher that found every
        -- slot taken does not claim on the insert's 'queued' alone, and waited for its poll (2 s).
        select sample.id, (select count(*) from room)::int as accounts, pg_notify('rhpool_wakeup', 'slot') from sample`
      if (job!.accounts !== 1) throw new Error(`no account ${account} to give a slot to`)
      const id = job!.id as string
      let t1 = Number.NaN
      await waitUntil(
        `sample ${id} (${i + 1} of ${options.samples}) to complete`,
        async () => {
          if (events === eventsBefore) return false
          const seen = lastEventAt
          const [row] = await sql`select status from upscaler_jobs where id = ${id}`
          if (row!.status === 'completed') {
            t1 = seen
            return true
          }
          if (row!.status === 'failed' || row!.status === 'cancelled') throw new Error(`sample ${id} ended ${row!.status}`)
          return false
        },
        60_000,
        0
      ).catch(async (error: Error) => {
        throw new Error(`${error.message}\n  ${await describeState(sql, id)}`)
      })
      totals.push(t1 - t0)
      // Break-down from the simulator's ledger (epoch milliseconds, 1 ms resolution).
      const epoch0 = performance.timeOrigin + t0
      const epoch1 = performance.timeOrigin + t1
      const submission = pool.sim.ledger.submissions.find((s) => s.jobRef?.includes(id) && s.taskId !== null)
      const callback = submission?.taskId ? pool.sim.ledger.callbacksFor(submission.taskId)[0] : undefined
      if (submission) toSubmission.push(submission.at - epoch0)
      if (callback) callbackToDone.push(epoch1 - callback.at)
      // The freed slot goes back to a background job before the next sample.
      await waitUntil('the pool to saturate again', saturated, 60_000, 2).catch(async (error: Error) => {
        const accounts = await sql`select name, running, max_slots, configured_slots, limit_reason from rhpool.account_status`
        throw new Error(`${error.message}: ${JSON.stringify(await inFlight())}, accounts ${JSON.stringify(accounts)}`)
      })
    }
  } finally {
    await subscription.unlisten()
    await listener.end({ timeout: 5 })
    await pool.stop()
    await failInFlight(sql)
  }
  return {
    depth,
    accounts,
    total: summarize(totals),
    toSubmission: summarize(toSubmission),
    callbackToDone: summarize(callbackToDone),
    saturateSeconds,
    load: loadAverage(),
  }
}

/** The readers of section 3, each called the same way its caller calls it. */
const depthReaders = [
  { name: 'run_maintenance()', call: (sql: Sql) => sql`select rhpool.run_maintenance()` },
  { name: 'pool_status() (GET /status)', call: (sql: Sql) => sql`select rhpool.pool_status()` },
  { name: 'queue_status (GET /metrics)', call: (sql: Sql) => sql`select tool, queued, oldest_wait_seconds from rhpool.queue_status` },
  { name: 'dashboard_data(15) (GET /dashboard)', call: (sql: Sql) => sql`select rhpool.dashboard_data(15)` },
  {
    name: 'job_view(), job 1st in queue (GET /jobs/…)',
    call: (sql: Sql, head: Row) => sql`select rhpool.job_view(${head.job_table}, ${head.job_id})`,
  },
  {
    name: 'job_view(), job last in queue',
    call: (sql: Sql, _head: Row, tail: Row) => sql`select rhpool.job_view(${tail.job_table}, ${tail.job_id})`,
  },
] as const

type Row = { job_table: string; job_id: string }

async function measureDepthCosts(sql: Sql, depth: number): Promise<DepthCosts> {
  const [head] =
    await sql`select job_table, job_id from rhpool.runs where status = 'queued' order by priority desc, fifo_at, job_id limit 1`
  const [tail] =
    await sql`select job_table, job_id from rhpool.runs where status = 'queued' order by priority, fifo_at desc, job_id desc limit 1`
  const [{ accounts }] = (await sql`select count(*)::int as accounts from rhpool.accounts`) as unknown as [{ accounts: number }]
  const readers: DepthCosts['readers'] = []
  for (const reader of depthReaders) {
    const latencies: number[] = []
    for (let i = 0; i < 5; i++) latencies.push((await timed(() => reader.call(sql, head as unknown as Row, tail as unknown as Row))).ms)
    readers.push({ name: reader.name, latency: summarize(latencies) })
  }
  return { depth, accounts, readers }
}

function printResults(claims: ClaimRow[], endToEnd: EndToEndRow[], costs: DepthCosts[]): void {
  console.log('\n1. Claim cost, rhpool.claim_account_slot() called directly, one connection (client-side ms):\n')
  console.log(
    formatTable(
      [
        { header: 'queued', align: 'right' },
        { header: 'accounts', align: 'right' },
        { header: 'all free: jobs/claim', align: 'right' },
        { header: 'p50', align: 'right' },
        { header: 'p95', align: 'right' },
        { header: 'ms per job (p50)', align: 'right' },
        { header: 'busy pool, 1 free: claims', align: 'right' },
        { header: 'p50', align: 'right' },
        { header: 'p95', align: 'right' },
        { header: 'p99', align: 'right' },
      ],
      claims.map((r) => [
        whole(r.depth),
        String(r.accounts),
        String(r.allFreeJobs),
        fixed(r.allFree.p50Ms),
        fixed(r.allFree.p95Ms),
        fixed(r.allFree.p50Ms / r.allFreeJobs, 3),
        whole(r.oneFree.count),
        fixed(r.oneFree.p50Ms),
        fixed(r.oneFree.p95Ms),
        fixed(r.oneFree.p99Ms),
      ])
    )
  )
  console.log(`\n2. End to end: INSERT of a job at the head of a saturated pool's queue → claimed → submitted to the
   simulator → 0 ms task → callback (${options.callbacks}) → completed (ms; ${options.samples} samples per row, one at a time):\n`)
  console.log(
    formatTable(
      [
        { header: 'queued', align: 'right' },
        { header: 'accounts', align: 'right' },
        { header: 'slots busy', align: 'right' },
        { header: 'p50', align: 'right' },
        { header: 'p95', align: 'right' },
        { header: 'max', align: 'right' },
        { header: 'insert → submitted p50', align: 'right' },
        { header: 'callback sent → done p50', align: 'right' },
        { header: 'pool filled in s', align: 'right' },
        { header: 'load avg after' },
      ],
      endToEnd.map((r) => [
        whole(r.depth),
        String(r.accounts),
        whole(r.accounts * options.slots),
        fixed(r.total.p50Ms),
        fixed(r.total.p95Ms),
        fixed(r.total.maxMs),
        fixed(r.toSubmission.p50Ms),
        fixed(r.callbackToDone.p50Ms),
        fixed(r.saturateSeconds, 1),
        r.load,
      ])
    )
  )
  console.log('\n   (the two break-down columns use the simulator\'s ledger times, 1 ms resolution; "pool filled" = from the')
  console.log('   start of rhpool until every slot holds an accepted background task)')
  console.log('\n3. What else reads the queue: p50 of 5 calls (max in brackets), ms. run_maintenance() runs every 15 s in the')
  console.log('   dispatcher (or from pg_cron); the others run when someone asks (a status page, a scrape, a user polling a job):\n')
  console.log(
    formatTable(
      [{ header: 'call' }, ...costs.map((c) => ({ header: `${whole(c.depth)} queued`, align: 'right' as const }))],
      depthReaders.map((reader) => [
        reader.name,
        ...costs.map((c) => {
          const latency = c.readers.find((r) => r.name === reader.name)!.latency
          return `${fixed(latency.p50Ms)} (${fixed(latency.maxMs)})`
        }),
      ])
    )
  )
  console.log(`\n   (read after each depth's account cases; accounts listed by status: ${costs.map((c) => c.accounts).join(' / ')})`)
}

async function main(): Promise<void> {
  const runStarted = performance.now()
  printHeader('rhpool at scale: queue depth × accounts', `npx tsx bench/scale.ts ${process.argv.slice(2).join(' ')}`.trimEnd())
  await withThrowawayCluster('scale', async (cluster) => {
    const url = await cluster.createDatabase('scale')
    await prepareDatabase(url)
    const sql = connect(url)
    try {
      // rhpool's dispatcher runs on this database: jobs carry file names, never URLs to download.
      await useFileInputs(sql)
      const apps = await appIdsByTable(sql)
      const sampleApp = apps.get('upscaler_jobs')?.get('standard')
      if (!sampleApp) throw new Error('rhpool.tools has no upscaler app for version "standard"')
      const claims: ClaimRow[] = []
      const endToEnd: EndToEndRow[] = []
      const costs: DepthCosts[] = []
      for (const depth of options.depths) {
        const fillStarted = performance.now()
        await fillQueueTo(url, depth)
        console.log(`\nqueue filled to ${whole(depth)} in ${seconds(fillStarted)} (load ${loadAverage()})`)
        for (const accounts of options.accounts) {
          const started = performance.now()
          const claim = await measureClaims(sql, depth, accounts)
          claims.push(claim)
          const e2e = await measureEndToEnd(url, sql, depth, accounts, sampleApp)
          endToEnd.push(e2e)
          // Background jobs the pool ran left the queue: put as many back.
          await addQueuedJobs(sql, depth - (await queueDepth(sql)))
          console.log(
            `  ${accounts} accounts: claim p50 ${fixed(claim.allFree.p50Ms)} ms (all ${claim.allFreeJobs} free) / ${fixed(claim.oneFree.p50Ms)} ms (1 free); end to end p50 ${fixed(e2e.total.p50Ms)} ms; ${seconds(started)}, load ${e2e.load}`
          )
        }
        // After the account cases, so every depth is read with the same accounts (those of
        // the claim cases and of the pools, 2 × the largest count: status lists each).
        costs.push(await measureDepthCosts(sql, depth))
      }
      printResults(claims, endToEnd, costs)
    } finally {
      await sql.end({ timeout: 5 })
    }
  })
  console.log(`\nload average at end: ${loadAverage()}; total wall time: ${seconds(runStarted)}`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  process.exitCode = 1
})
