// The webhook's and the confirmer's rhpool calls: callbacks applied, held or
// received as claims (300-callbacks.sql, 310-confirmation.sql,
// 320-webhook-abuse.sql) and deliveries that changed nothing.
import type { TaskEnd } from '../runninghub/task-callback.ts'
import type { Sql } from './connect.ts'
import { inItemOrder, json, rows, rowsInItemOrder, run, value } from './rhpool-query.ts'
import { StepBatcher, type StepBatcherOptions } from './step-batcher.ts'

/** Where a delivery says it belongs, as its signed address names it. */
export interface CallbackAddress {
  jobTable: string
  jobId: string
  attempt: number
  taskId: string | null
}

/** A callback as the SQL functions read it: an end, or a status that is not one (UNSETTLED, NOT_FOUND, RUNNING, …). */
export type CallbackVerdict = TaskEnd | { status: string; reason?: string }

/**
 * What takes a correctly signed TASK_END: applied as sent, received as a
 * claim for a dispatcher to confirm, or only held (it cannot be acted on as
 * sent). Each returns the delivery's outcome.
 */
export type CallbackFunction = 'apply_callback' | 'receive_claim' | 'hold_callback'

interface TakenCallback {
  fn: CallbackFunction
  at: CallbackAddress
  callback: CallbackVerdict
  body: string
}

/** A RunningHub key a process holds: the account's name and the key's fingerprint (never the key). */
export interface HeldKey {
  name: string
  fingerprint: string
}

/** Who the route may hand a plainly valid claim to: the keys it can confirm with now, and the lease it holds them with. */
export interface HandOverTerms {
  keys: HeldKey[]
  leaseSeconds: number
}

/** A delivery's outcome, and the held callback when it was handed to this process (leased, committed). */
export interface TakenOutcome {
  outcome: string
  handed: UnconfirmedCallback | null
}

/**
 * Takes correctly signed callbacks, batched (step-batcher.ts, 330-callback-batches.sql):
 * those that arrive while a batch is being written go together as the next one.
 * Each answers the delivery's outcome, as the single-callback function does.
 *
 * One batch in flight at a time, as every other step. Until 2026-12-04 the route
 * wrote two at once, chosen when each callback in a batch was its own function
 * call; since held callbacks are one statement a batch (hold_claims), fuller
 * batches cost less per delivery (bench/README.md, "One batch of callbacks in
 * flight": PostgreSQL CPU per delivery -19 to -26%, the route's -11 to -18%).
 */
export class CallbackTaker {
  private readonly batcher: StepBatcher<TakenCallback, TakenOutcome>

  /** @param handOver the terms for each batch's receive_claim (none: every claim is held for any process's rounds) */
  constructor(sql: Sql, handOver: () => HandOverTerms | null = () => null, batching: StepBatcherOptions = { maxInFlight: 1 }) {
    this.batcher = new StepBatcher(async (items) => {
      const terms = handOver()
      const answers = await rows<{ ord: number; value: string; handed_delivery: string | null; handed_account: string | null }>(
        sql`select ord, value, handed_delivery, handed_account from rhpool.take_callbacks(
        ${items.map((i) => i.fn)}::text[], ${items.map((i) => i.at.jobTable)}::text[], ${items.map((i) => i.at.jobId)}::uuid[],
        ${items.map((i) => i.at.attempt)}::integer[], ${items.map((i) => i.at.taskId)}::text[],
        ${/* objects: postgres.js serializes each element as the jsonb[] the statement declares */ items.map((i) => i.callback) as never}::jsonb[], ${items.map((i) => i.body)}::text[],
        ${terms?.keys.map((k) => k.name) ?? []}::text[], ${terms?.keys.map((k) => k.fingerprint) ?? []}::text[],
        ${terms?.leaseSeconds ?? null}::numeric)`
      )
      return rowsInItemOrder(answers, items.length, 'callbacks').map((answer, n) => {
        const { at } = items[n]!
        const handed =
          answer.handed_delivery === null || answer.handed_account === null || at.taskId === null
            ? null
            : { delivery_id: String(answer.handed_delivery), job_table: at.jobTable, job_id: at.jobId, api_account: answer.handed_account, task_id: at.taskId }
        return { outcome: String(answer.value), handed }
      })
    }, batching)
  }

  take(fn: CallbackFunction, at: CallbackAddress, callback: CallbackVerdict, body: string): Promise<TakenOutcome> {
    return this.batcher.call({ fn, at, callback, body })
  }
}

export interface RejectedDelivery {
  outcome: string
  httpStatus: number
  detail: string
  body: string | null
  jobTable?: string
  jobId?: string
  attempt?: number
  taskId?: string | null
  event?: string
}

/** A correctly signed delivery that changed nothing: recorded, whole. */
export function recordRejectedDelivery(sql: Sql, d: RejectedDelivery): Promise<void> {
  return run(sql`select rhpool.record_rejected_delivery(${d.outcome}, ${d.httpStatus}, ${d.detail}, ${d.body},
    ${d.jobTable ?? null}, ${d.jobId ?? null}, ${d.attempt ?? null}, ${d.taskId ?? null}, ${d.event ?? null})`)
}

/** A delivery whose signature does not verify: counted, a short sample kept. True when the sample was kept. */
export async function recordUnverifiedDelivery(sql: Sql, outcome: string, httpStatus: number, detail: string, sample: string | null): Promise<boolean> {
  return (await value<boolean>(sql`select rhpool.record_unverified_delivery(${outcome}, ${httpStatus}, ${detail}, ${sample}) as value`)) === true
}

/** claim_unconfirmed's row: a held callback this dispatcher now checks. delivery_id is a bigint, as text. */
export interface UnconfirmedCallback {
  delivery_id: string
  job_table: string
  job_id: string
  api_account: string
  task_id: string
}

/** Held callbacks for the accounts whose recorded keys are among these (a stale key is never asked with). */
export function claimUnconfirmed(sql: Sql, keys: HeldKey[], maxRows: number, leaseSeconds: number): Promise<UnconfirmedCallback[]> {
  return rows(sql`select * from rhpool.claim_unconfirmed(${keys.map((k) => k.name)}::text[], ${keys.map((k) => k.fingerprint)}::text[],
    ${maxRows}, ${leaseSeconds})`)
}

/** Ask again after retrySeconds. */
export function postponeUnconfirmed(sql: Sql, deliveryId: string, retrySeconds: number): Promise<void> {
  return run(sql`select rhpool.postpone_unconfirmed(${deliveryId}, ${retrySeconds})`)
}

/**
 * Applies RunningHub's answers to held callbacks, batched as CallbackTaker is:
 * each answers the outcome, as confirm_callback does.
 */
export class CallbackConfirmations {
  private readonly batcher: StepBatcher<{ deliveryId: string; verdict: CallbackVerdict }, string | null>

  constructor(sql: Sql, retrySeconds: number, batching: StepBatcherOptions = { maxInFlight: 1 }) {
    this.batcher = new StepBatcher(async (items) => {
      const answers = await rows<{ ord: number; value: string | null }>(sql`select ord, value from rhpool.confirm_callbacks(
        ${items.map((i) => i.deliveryId)}::bigint[], ${items.map((i) => i.verdict) as never}::jsonb[], ${retrySeconds})`)
      return inItemOrder(answers, items.length, 'callback confirmations')
    }, batching)
  }

  confirm(deliveryId: string, verdict: CallbackVerdict): Promise<string | null> {
    return this.batcher.call({ deliveryId, verdict })
  }
}
