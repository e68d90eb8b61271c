// Claiming the way a dispatcher does, and putting the queue back as it was, so
// every timed claim meets the same queue depth and the same free slots.
import { connect, type Sql } from './bench-database.ts'
import { timed } from './latency-stats.ts'

export interface ClaimedJob {
  job_table: string
  job_id: string
  api_account: string
  /** The claim's token (int8, as text): every step after the claim names it. */
  claim_token: string
}

const holder = 'bench'

/** One call of rhpool.claim_account_slot(): the only thing the latencies time. */
export async function claimBatch(sql: Sql, maxJobs: number): Promise<ClaimedJob[]> {
  const rows = await sql`select job_table, job_id, api_account, claim_token from rhpool.claim_account_slot(${maxJobs}, ${holder}, 60)`
  return rows as unknown as ClaimedJob[]
}

/**
 * Cancels the claimed jobs (ending their runs, and so freeing their slots,
 * through rhpool's trigger) and adds as many new queued jobs, in one round
 * trip. Untimed.
 */
export async function freeAndRefill(sql: Sql, claimed: ClaimedJob[]): Promise<void> {
  if (claimed.length === 0) return
  const tables = claimed.map((c) => c.job_table)
  const ids = claimed.map((c) => c.job_id)
  await sql`select bench.cancel_and_refill(${tables}::text[], ${ids}::uuid[])`
}

export interface SequentialResult {
  latenciesMs: number[]
  jobsClaimed: number
  /** Claims that returned fewer jobs than there were free slots (should be none). */
  shortClaims: number
  /** True when the time budget, not the iteration count, ended the run. */
  stoppedByBudget: boolean
}

export interface SequentialPlan {
  freeSlots: number
  iterations: number
  warmup: number
  /** Wall-time budget for the whole case (warm-up, claims and the untimed refills). */
  budgetSeconds: number
}

/**
 * Up to `iterations` claims, each filling every free slot, after up to `warmup`
 * untimed ones (warm caches, and past plpgsql's first five custom plans so the
 * timed calls run the plan a long-lived dispatcher connection runs). The time
 * budget keeps a slow case from eating the whole run: warm-up may use a quarter
 * of it, and at least one claim is always timed.
 */
export async function measureSequentialClaims(sql: Sql, plan: SequentialPlan): Promise<SequentialResult> {
  const started = performance.now()
  const elapsedSeconds = (): number => (performance.now() - started) / 1000
  for (let i = 0; i < plan.warmup && elapsedSeconds() < plan.budgetSeconds / 4; i++) {
    await freeAndRefill(sql, await claimBatch(sql, plan.freeSlots))
  }
  const result: SequentialResult = { latenciesMs: [], jobsClaimed: 0, shortClaims: 0, stoppedByBudget: false }
  while (result.latenciesMs.length < plan.iterations) {
    if (result.latenciesMs.length > 0 && elapsedSeconds() >= plan.budgetSeconds) {
      result.stoppedByBudget = true
      break
    }
    const { result: claimed, ms } = await timed(() => claimBatch(sql, plan.freeSlots))
    result.latenciesMs.push(ms)
    result.jobsClaimed += claimed.length
    if (claimed.length < plan.freeSlots) result.shortClaims++
    await freeAndRefill(sql, claimed)
  }
  return result
}

export interface ConcurrentResult {
  latenciesMs: number[]
  jobsClaimed: number
  elapsedSeconds: number
}

/**
 * `connections` clients at once, each in a loop: claim one job (timed), then
 * cancel it and refill the queue. Throughput counts whole cycles per second
 * of wall time, since in a real pool the slot is also freed by someone.
 */
export async function measureConcurrentClaims(url: string, connections: number, seconds: number): Promise<ConcurrentResult> {
  const clients = Array.from({ length: connections }, () => connect(url))
  try {
    // Untimed warm-up per connection: open it, prepare the statements, pass plpgsql's custom plans.
    await Promise.all(
      clients.map(async (sql) => {
        for (let i = 0; i < 8; i++) await freeAndRefill(sql, await claimBatch(sql, 1))
      })
    )
    const result: ConcurrentResult = { latenciesMs: [], jobsClaimed: 0, elapsedSeconds: 0 }
    const started = performance.now()
    const deadline = started + seconds * 1000
    await Promise.all(
      clients.map(async (sql) => {
        while (performance.now() < deadline) {
          const { result: claimed, ms } = await timed(() => claimBatch(sql, 1))
          result.latenciesMs.push(ms)
          result.jobsClaimed += claimed.length
          await freeAndRefill(sql, claimed)
        }
      })
    )
    result.elapsedSeconds = (performance.now() - started) / 1000
    return result
  } finally {
    await Promise.all(clients.map((sql) => sql.end({ timeout: 5 })))
  }
}
