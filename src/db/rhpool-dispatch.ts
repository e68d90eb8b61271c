// The dispatcher's rhpool calls: claims (150-claim-account-slot.sql), the
// submission steps under a claim (210-submission.sql), the account answers
// (140-account-health.sql, 100-account-limits.sql) and cancellations
// (400-cancellation.sql). Every step under a claim names it by its token.
import type { Sql } from './connect.ts'
import { inItemOrder, rows, run, value } from './rhpool-query.ts'
import { StepBatcher, type StepBatcherOptions } from './step-batcher.ts'

/** A claimed job: claim_account_slot's and adopt_claims' row. */
export interface Claim {
  job_table: string
  job_id: string
  api_account: string
  /** Names this claim in every later step; a step under a recovered claim is refused. bigint, as text. */
  claim_token: string
}

/** A claim with what its submission is built from: the job's row and its tool's definition (claimed_job's answer). */
export interface ClaimedJob<Job, Tool> extends Claim {
  job: Job
  tool: Tool
}

export interface ClaimOptions {
  maxJobs: number
  holder: string
  /** The accounts this claimer holds keys for. */
  accounts: string[]
  /** Null: the lease_seconds setting. */
  leaseSeconds?: number | null
}

/**
 * Up to maxJobs claims on the given accounts, with their rows, in one round trip (claim_for_dispatcher):
 * the claims a claim round (pg_cron) made for them first, then new ones in the strategy setting's order.
 */
export function claimForDispatcher<Job, Tool>(sql: Sql, options: ClaimOptions): Promise<Array<ClaimedJob<Job, Tool>>> {
  const { maxJobs, holder, accounts, leaseSeconds = null } = options
  return rows<ClaimedJob<Job, Tool>>(
    sql`select * from rhpool.claim_for_dispatcher(${holder}, ${accounts}::text[], ${maxJobs}, ${leaseSeconds})`
  )
}

/** Whether any of these accounts has a slot no run holds: when none has, a claim for them cannot succeed (slot_free_among). */
export async function slotFreeAmong(sql: Sql, accounts: string[]): Promise<boolean> {
  return (await value<boolean>(sql`select rhpool.slot_free_among(${accounts}::text[]) as value`)) === true
}

/** False when the claim is gone (recovered): stop working on the job. Lease null: the lease_seconds setting. */
export async function renewLease(sql: Sql, claim: Claim): Promise<boolean> {
  return (await value<boolean>(sql`select rhpool.renew_lease(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}) as value`)) === true
}

/** claimed → submitting: the job's attempts (counting this one), or null when the claim is no longer the job's. */
/** What begin_submission answers: the attempt this submission is, or null when the claim is no longer the job's (send nothing). */
export type Begun = { attempts: number; status: 'submitting' } | null

/**
 * The two steps every submission takes, batched (step-batcher.ts): claimed →
 * submitting just before the HTTP call (begin), and the task id RunningHub
 * answered (record). Each answers as the single-job SQL step does.
 */
export class SubmissionSteps {
  private readonly begins: StepBatcher<Claim, Begun>
  private readonly records: StepBatcher<{ claim: Claim; taskId: string }, string | null>

  /** @param timeoutSeconds the create call's timeout: the submitting lease covers it */
  constructor(sql: Sql, timeoutSeconds: number, batching: StepBatcherOptions = { maxInFlight: 1 }) {
    this.begins = new StepBatcher(async (claims) => {
      const answers = await rows<{ ord: number; value: Begun }>(
        sql`select ord, value from rhpool.begin_submissions(${claims.map((c) => c.job_table)}::text[], ${claims.map((c) => c.job_id)}::uuid[],
              ${claims.map((c) => c.claim_token)}::bigint[], ${timeoutSeconds})`
      )
      return inItemOrder(answers, claims.length, 'submission steps')
    }, batching)
    this.records = new StepBatcher(async (items) => {
      const answers = await rows<{ ord: number; value: string | null }>(
        sql`select ord, value from rhpool.record_submissions(${items.map((i) => i.claim.job_table)}::text[], ${items.map((i) => i.claim.job_id)}::uuid[],
              ${items.map((i) => i.claim.claim_token)}::bigint[], ${items.map((i) => i.taskId)}::text[])`
      )
      return inItemOrder(answers, items.length, 'submission steps')
    }, batching)
  }

  /** claimed → submitting; null when the claim is no longer the job's: then send nothing. */
  begin(claim: Claim): Promise<Begun> {
    return this.begins.call(claim)
  }

  /** RunningHub accepted the task: the job's status afterwards (under a claim no longer the job's: its status as it is, nothing written). */
  record(claim: Claim, taskId: string): Promise<string | null> {
    return this.records.call({ claim, taskId })
  }
}


/** Back in the queue in its place; false when the claim is no longer the job's. */
export async function releaseToQueue(sql: Sql, claim: Claim, reason: string | null): Promise<boolean> {
  return (await value<boolean>(sql`select rhpool.release_to_queue(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}, ${reason}) as value`)) === true
}

export interface ClaimError {
  code: string
  message: string
}

/** Queued again after a delay (or failed when out of attempts): the status, null when the claim was refused. */
export function retryLater(sql: Sql, claim: Claim, error: ClaimError, delaySeconds: number): Promise<string | null> {
  return value(sql`select rhpool.retry_later(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}, ${error.code}, ${error.message}, ${delaySeconds}) as value`)
}

/** The job fails: its status, null when the claim was refused. */
export function failClaim(sql: Sql, claim: Claim, error: ClaimError): Promise<string | null> {
  return value(sql`select rhpool.fail_claim(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}, ${error.code}, ${error.message}) as value`)
}

/** Sent, no answer: outcome_unknown, never resubmitted. The status, null when the claim was refused. */
export function markOutcomeUnknown(sql: Sql, claim: Claim, message: string): Promise<string | null> {
  return value(sql`select rhpool.mark_outcome_unknown(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}, ${message}) as value`)
}

/** The job back in its place, the account's limit lowered; the cooldown's end when it was at one slot, else null. */
export function accountWasFull(sql: Sql, claim: Claim, account: string, reason: string): Promise<Date | null> {
  return value(sql`select rhpool.account_was_full(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}, ${account}, ${reason}) as value`)
}

/** The job back in its place, the account disabled. */
export function accountWasBroken(sql: Sql, claim: Claim, account: string, reason: string): Promise<void> {
  return run(sql`select rhpool.account_was_broken(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}, ${account}, ${reason})`)
}

/** The limit admission counts against (null for an unknown account). */
export function effectiveLimit(sql: Sql, account: string): Promise<number | null> {
  return value(sql`select rhpool.effective_limit(${account}) as value`)
}

export interface PendingCancellation {
  job_table: string
  job_id: string
  api_account: string
  task_id: string | null
  status: string
}

export function pendingCancellations(sql: Sql, maxJobs = 50): Promise<PendingCancellation[]> {
  return rows(sql`select * from rhpool.pending_cancellations(${maxJobs})`)
}

/** The job ends cancelled: what became of it. */
export function finishCancel(sql: Sql, jobTable: string, jobId: string): Promise<string | null> {
  return value(sql`select rhpool.finish_cancel(${jobTable}, ${jobId}) as value`)
}

/** The lease_seconds setting (required: an error when it is missing). */
export async function leaseSeconds(sql: Sql): Promise<number> {
  return Number(await value<number>(sql`select rhpool.required_setting('lease_seconds')::integer as value`))
}
