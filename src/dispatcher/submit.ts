// One claimed job, from claim to RunningHub task. The only start path.
//
//   claimed ── inputs marked upload fetched and uploaded with the account's key ── begin_submission ──▶ submitting
//   submitting ── POST run/ai-app ──▶ running (task id saved)
//                                 └─▶ back in the queue in its place (account full / broken)
//                                 └─▶ queued after a backoff (transient) or failed (bad request)
//                                 └─▶ outcome_unknown (sent, no answer): never resubmitted
import type { Config, AccountConfig } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import * as db from '../db/rhpool.ts'
import type { Claim, ClaimedJob, SubmissionSteps } from '../db/rhpool.ts'
import { jobLabel, type Logger } from '../log.ts'
import type { Metrics } from '../metrics.ts'
import type { AnswerClass } from '../runninghub/classify.ts'
import type { RunningHubClient } from '../runninghub/client.ts'
import { buildNodeInfoList, chooseApp, JobInputError, type ToolDefinition } from '../tools/node-info.ts'
import { webhookPath } from '../webhook/job-reference.ts'
import { retryDelayMs } from './backoff.ts'
import type { InputFetcher } from './input-fetch.ts'
import { InputTransferError, transferInput } from './inputs.ts'

export type { Claim }

/** The claim was recovered (its lease ran out) and may be another worker's now: stop working on the job. */
export class ClaimLostError extends Error {
  constructor(readonly claim: Claim) {
    super(`claim ${claim.claim_token} on ${claim.job_table}/${claim.job_id} was recovered; this worker stops working on the job`)
  }
}

export interface SubmitContext {
  sql: Sql
  /** begin_submission and record_submission, batched across this dispatcher's submissions. */
  steps: SubmissionSteps
  config: Config
  client: RunningHubClient
  /** Fetches inputs marked `upload` under the input policy (public addresses, byte cap, deadline). */
  fetchInput: InputFetcher
  log: Logger
  metrics?: Metrics
  holder: string
  accounts: Map<string, AccountConfig>
  isStopping: () => boolean
}

export type JobRow = Record<string, unknown> & { attempts: number; max_attempts: number }

/** A claim as the dispatcher holds it: with the job's row and its tool, read in the claim's transaction. */
export type HeldClaim = ClaimedJob<JobRow, ToolDefinition>

export async function submitClaim(ctx: SubmitContext, held: HeldClaim): Promise<string> {
  const { job: row, tool, ...claim } = held
  const { sql, log } = ctx
  const job = jobLabel(claim.job_table, claim.job_id)
  const account = ctx.accounts.get(claim.api_account)
  if (!account) {
    // A guard that should not fire: the dispatcher claims only on accounts it holds the recorded key of
    // (claim_account_slot's accounts, presence.ts). Reaching it is a bug (or the key set changed between
    // the claim and this line); the job goes back to its place.
    await db.releaseToQueue(sql, claim, 'no key for this account in the dispatcher that claimed it')
    log.error(
      { job, account: claim.api_account, bug: true },
      'BUG: claimed a job on an account this dispatcher holds no key for (claims are limited to its own accounts); released it'
    )
    return 'released'
  }

  let webappId: string
  let nodeInfoList
  try {
    webappId = chooseApp(tool, row)
    // The lease is renewed before the download and again before the upload: each is bounded by less than a lease.
    // A renewal that fails means the claim was recovered: the work on this job stops here.
    const renew = async () => {
      // Lease null: the lease_seconds setting, the one every claim uses.
      if (!(await db.renewLease(sql, claim))) throw new ClaimLostError(claim)
    }
    nodeInfoList = await buildNodeInfoList(tool, row, async (url, field) => {
      await renew()
      return await transferInput(ctx.client, ctx.fetchInput, account.apiKey, url, field, renew)
    })
  } catch (error) {
    if (error instanceof ClaimLostError) return claimLost(ctx, claim, 'nothing sent')
    if (error instanceof JobInputError) {
      if (!(await db.failClaim(sql, claim, error))) return claimLost(ctx, claim, 'not failed')
      log.warn({ job, account: account.name, field: error.field }, `job failed: ${error.message}`)
      return 'failed'
    }
    if (error instanceof InputTransferError) {
      return await actOnFailure(ctx, claim, account, row.attempts + 1, error.cls, error.code, error.message)
    }
    throw error
  }

  if (ctx.isStopping()) {
    return (await db.releaseToQueue(sql, claim, null)) ? 'released' : claimLost(ctx, claim, 'not released')
  }

  const begun = await ctx.steps.begin(claim)
  if (!begun) return claimLost(ctx, claim, 'nothing sent')
  const attempt = begun.attempts
  const webhookUrl =
    ctx.config.publicBaseUrl + webhookPath(ctx.config.webhookSecret, { jobTable: claim.job_table, jobId: claim.job_id, attempt })

  log.info({ job, account: account.name, attempt, webappId }, 'submitting')
  const answer = await ctx.client.runAiApp(account.apiKey, webappId, {
    nodeInfoList,
    webhookUrl,
    ...(tool.instance_type ? { instanceType: tool.instance_type } : {}),
  })

  if (answer.ok) {
    // One transaction: the task recorded, and the account's cooldown streak ended (record_submission).
    const status = await ctx.steps.record(claim, answer.value.taskId)
    ctx.metrics?.submissions.inc({ account: account.name, result: 'accepted' })
    log.info({ job, account: account.name, taskId: answer.value.taskId, status }, 'RunningHub accepted the task')
    return 'running'
  }
  if (answer.kind === 'unknown') {
    const marked = await db.markOutcomeUnknown(
      sql,
      claim,
      `no answer after sending (${answer.code}): waiting for the callback, never resubmitted`
    )
    if (!marked) return claimLost(ctx, claim, "its outcome is the job's current claim's to settle")
    ctx.metrics?.submissions.inc({ account: account.name, result: 'unknown' })
    log.warn(
      { job, account: account.name, error: answer.code },
      'the request was sent but no answer came back; the outcome will be reconciled'
    )
    return 'outcome_unknown'
  }
  return await actOnFailure(ctx, claim, account, attempt, answer.cls, answer.code, answer.message)
}

async function actOnFailure(
  ctx: SubmitContext,
  claim: Claim,
  account: AccountConfig,
  attempt: number,
  cls: AnswerClass,
  code: string,
  message: string
): Promise<string> {
  const { sql, log } = ctx
  const job = jobLabel(claim.job_table, claim.job_id)
  ctx.metrics?.submissions.inc({ account: account.name, result: cls })
  const reason = `${code}: ${message}`.slice(0, 500)
  switch (cls) {
    case 'account_full': {
      const until = await db.accountWasFull(sql, claim, account.name, reason)
      const limit = await db.effectiveLimit(sql, account.name)
      log.info(
        { job, account: account.name, code, limit, cooldownUntil: until },
        until
          ? 'account full at one slot: job back in its place, account cooling down'
          : 'account full: job back in its place, account limit lowered by one'
      )
      return 'released'
    }
    case 'account_broken': {
      await db.accountWasBroken(sql, claim, account.name, reason)
      log.error({ job, account: account.name, code }, `account disabled: ${message}`)
      return 'released'
    }
    case 'bad_request':
    case 'task_failed':
    // "No such task" in answer to a create call: nothing ran, and resending the same request cannot help.
    case 'task_gone': {
      if (!(await db.failClaim(sql, claim, { code, message }))) return claimLost(ctx, claim, 'not failed')
      log.warn({ job, account: account.name, code }, `job failed: ${message}`)
      return 'failed'
    }
    case 'transient': {
      const delayMs = retryDelayMs(attempt, ctx.config.dispatcher.retryBaseMs, ctx.config.dispatcher.retryMaxMs)
      const status = await db.retryLater(sql, claim, { code, message }, delayMs / 1000)
      if (!status) return claimLost(ctx, claim, 'not retried')
      log.warn({ job, account: account.name, code, attempt, delayMs, status }, `transient failure: ${message}`)
      return status
    }
  }
}

/** A step under this claim was refused: the claim was recovered (and the job may be another worker's now). */
function claimLost(ctx: SubmitContext, claim: Claim, what: string): string {
  ctx.log.warn(
    { job: jobLabel(claim.job_table, claim.job_id), account: claim.api_account, claim: claim.claim_token },
    `${new ClaimLostError(claim).message} (${what})`
  )
  return 'lost'
}
