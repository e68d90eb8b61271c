// Callbacks are claims (RHPOOL_CONFIRM_CALLBACKS, on by default): the webhook
// holds them as 'unconfirmed'; here a dispatcher claims the held ones whose
// account it has the key of (rhpool.claim_unconfirmed, which also refuses the
// ones that cannot be this job's task), asks RunningHub's query, and applies
// RunningHub's answer, not the callback's content (rhpool.confirm_callback).
import type { AccountConfig } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import { jobLabel, type Logger } from '../log.ts'
import type { RunningHubClient } from '../runninghub/client.ts'
import { verdictFromTask } from '../runninghub/task-callback.ts'
import { jsonbSafe } from '../db/json.ts'
import {
  claimUnconfirmed,
  postponeUnconfirmed,
  type CallbackConfirmations,
  type CallbackVerdict,
  type UnconfirmedCallback,
} from '../db/rhpool.ts'

export interface ConfirmationOptions {
  /** How long a claimed callback is this dispatcher's: longer than one query can take. */
  leaseSeconds: number
  /** After a failed query, or for a job not yet far enough: ask again after this. */
  retrySeconds: number
  /** Where the answers are applied, batched across the queries of every round (its retry is retrySeconds). */
  confirmations: CallbackConfirmations
}

/** Queries at once: enough that a storm of callbacks is confirmed in a few round trips, few enough to stay polite. */
export const parallelQueries = 8
const batch = 50

/**
 * One held callback this process has the lease of: RunningHub's query with the
 * account's key, and its answer applied (or the callback postponed when
 * RunningHub could not be asked). True when it was resolved.
 */
export async function confirmHeldCallback(
  sql: Sql,
  client: RunningHubClient,
  accounts: Map<string, AccountConfig>,
  log: Logger,
  options: ConfirmationOptions,
  row: UnconfirmedCallback
): Promise<boolean> {
  const job = jobLabel(row.job_table, row.job_id)
  const account = accounts.get(row.api_account)
  if (!account) {
    // The key went away since the lease was taken (a reload): another process with it takes the callback now.
    await postponeUnconfirmed(sql, row.delivery_id, 0)
    return false
  }
  const answer = await client.query(account.apiKey, row.task_id)
  let verdict: CallbackVerdict
  if (answer.ok) {
    // Only a decidable end is applied; "not over" and "SUCCESS without results" refute the callback.
    const said = verdictFromTask(jsonbSafe(answer.value) as unknown as Record<string, unknown>)
    verdict = said.kind === 'ended' ? said.end : { status: said.kind === 'not_ended' ? said.status : 'UNSETTLED' }
  } else if (answer.kind === 'answer' && answer.cls === 'task_gone') verdict = { status: 'NOT_FOUND' }
  else {
    log.warn({ job, code: answer.code }, 'could not confirm a callback with RunningHub; will retry')
    await postponeUnconfirmed(sql, row.delivery_id, options.retrySeconds)
    return false
  }
  const outcome = await options.confirmations.confirm(row.delivery_id, verdict)
  log.info({ job, taskId: row.task_id, outcome }, 'callback checked with RunningHub')
  return true
}

export async function processConfirmations(
  sql: Sql,
  client: RunningHubClient,
  accounts: Map<string, AccountConfig>,
  log: Logger,
  options: ConfirmationOptions
): Promise<number> {
  if (accounts.size === 0) return 0
  const pending = await claimUnconfirmed(sql, [...accounts.values()], batch, options.leaseSeconds)
  let resolved = 0
  const queue = [...pending]
  await Promise.all(
    Array.from({ length: Math.min(parallelQueries, queue.length) }, async () => {
      for (let row = queue.shift(); row; row = queue.shift()) {
        try {
          if (await confirmHeldCallback(sql, client, accounts, log, options, row)) resolved++
        } catch (error) {
          // The claim's lease runs out and another round takes it.
          log.error({ job: jobLabel(row.job_table, row.job_id), err: (error as Error).message }, 'confirming a callback failed; will retry')
        }
      }
    })
  )
  return resolved
}
