// RunningHub's answers, classified once, here, by what the scheduler must do
// (the table in runninghub-api.md). Every other module acts on the class.

export type AnswerClass =
  /** The account is at its limit right now: the job keeps its place, the account cools down. */
  | 'account_full'
  /** Bad key, no balance: the account leaves rotation with a visible reason; the job stays queued. */
  | 'account_broken'
  /** The request itself is wrong: the job fails with a clear code. */
  | 'bad_request'
  /** The workflow ran and failed: the job fails. */
  | 'task_failed'
  /** Worth retrying with backoff, a bounded number of times. */
  | 'transient'
  /** RunningHub does not know the task (never had it, or forgot it): it is lost; for cancel, nothing is left to stop. */
  | 'task_gone'

const codeClasses: Record<string, AnswerClass> = {}
const assign = (cls: AnswerClass, codes: Array<string | number>): void => {
  for (const code of codes) codeClasses[String(code)] = cls
}
assign('account_full', [421, 415, 814, 1003, 1011, 1520, 'TASK_QUEUE_MAXED', 'TASK_INSTANCE_MAXED', 'PERSONAL_QUEUE_COUNT_LIMIT', 'TASK_USER_CONCURRENT_LIMIT'])
assign('account_broken', [801, 802, 806, 811, 812, 416, 436, 1002, 1014,
  'APIKEY_UNAUTHORIZED', 'APIKEY_USER_NOT_FOUND', 'CORPAPIKEY_INSUFFICIENT_FUNDS', 'TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET', 'TASK_CREATE_FAILED_BY_NOT_ENOUGH_POWER_VALUE'])
assign('bad_request', [301, 380, 412, 433, 435, 803, 809, 810, 901, 1001, 1007, 1008, 1009, 1101, 1501, 1505,
  'PARAMS_INVALID', 'WORKFLOW_NOT_EXISTS', 'VALIDATE_PROMPT_FAILED', 'APIKEY_INVALID_NODE_INFO', 'WORKFLOW_NOT_SAVED_OR_NOT_RUNNING', 'WEBAPP_NOT_EXISTS'])
assign('task_failed', [805])
// 807 APIKEY_TASK_NOT_FOUND, 423 TASK_NOT_FOUNED, 1004 "task does not exist or expired":
// one meaning, decided here, acted on by query, cancel and reconciliation alike.
assign('task_gone', [807, 423, 1004, 'APIKEY_TASK_NOT_FOUND', 'TASK_NOT_FOUNED'])
assign('transient', [500, 808, 1000, 1005, 1006, 1010, 1012, 1013, 1015, 1504])

// What a user may be shown about a job that did not complete: plain words by
// kind of failure, never RunningHub's raw text. The database's
// rhpool.user_message() reads these words from rhpool.error_codes, which
// `rhpool migrate` writes from errorCodeTable() below: one table, here.
export const userMessages = {
  inputs_refused: 'The job could not be started: its inputs were not accepted.',
  moderated: 'The job was refused by content moderation.',
  processing_failed: 'The job failed while it was being processed.',
  cancelled: 'The job was cancelled.',
  try_again: 'The job could not be completed. Please try again.',
} as const
export type UserMessageKind = keyof typeof userMessages

/** The words for a RunningHub code follow its class, except where a code says more. */
const messageByClass: Record<AnswerClass, UserMessageKind> = {
  bad_request: 'inputs_refused',
  task_failed: 'processing_failed',
  account_full: 'try_again',
  account_broken: 'try_again',
  transient: 'try_again',
  task_gone: 'try_again',
}
const messageOverrides: Record<string, UserMessageKind> = { 1501: 'moderated', 1505: 'moderated' }

// rhpool's own failure codes (never sent by RunningHub), with the class that
// describes them where one does.
const rhpoolCodes: Record<string, { cls: AnswerClass | null; message: UserMessageKind }> = {
  INVALID_INPUT: { cls: 'bad_request', message: 'inputs_refused' },
  INVALID_INPUT_URL: { cls: 'bad_request', message: 'inputs_refused' },
  INPUT_DOWNLOAD_FAILED: { cls: 'bad_request', message: 'inputs_refused' },
  INPUT_TOO_LARGE: { cls: 'bad_request', message: 'inputs_refused' },
  TASK_FAILED: { cls: 'task_failed', message: 'processing_failed' },
  CANCELLED: { cls: null, message: 'cancelled' },
}

export interface ErrorCodeEntry {
  code: string
  class: AnswerClass | null
  userMessage: string
}

/** Every code rhpool knows, with its class and a user's words; '*' is any other code (transient). */
export function errorCodeTable(): ErrorCodeEntry[] {
  const rows: ErrorCodeEntry[] = Object.entries(codeClasses).map(([code, cls]) => ({
    code,
    class: cls,
    userMessage: userMessages[messageOverrides[code] ?? messageByClass[cls]],
  }))
  for (const [code, { cls, message }] of Object.entries(rhpoolCodes)) rows.push({ code, class: cls, userMessage: userMessages[message] })
  rows.push({ code: '*', class: 'transient', userMessage: userMessages[messageByClass.transient] })
  return rows
}

/**
 * The class of a RunningHub error code (numeric or symbolic). A code nobody
 * has documented is treated as transient: retried a bounded number of times,
 * then failed with the code visible — never silently dropped, never a reason
 * to disable an account.
 */
export function classifyErrorCode(code: string | number): AnswerClass {
  return codeClasses[String(code).trim()] ?? 'transient'
}

/** HTTP statuses that say something before any body is read. */
export function classifyHttpStatus(status: number): AnswerClass | null {
  if (status === 429) return 'account_full'
  if (status === 401 || status === 403) return 'account_broken'
  if (status >= 500) return 'transient'
  if (status === 408) return 'transient'
  if (status >= 400) return 'bad_request'
  return null
}

// Failures of RunningHub's own machines, not of the workflow: the production
// product retried these (up to twice) and they then succeeded. Any other
// FAILED task is final.
const machineFailure = /Stale file handle|OSError|FileNotFoundError/
const fileLoaders = /LoadImage|LoadVideo/

/**
 * True when a FAILED task failed because of RunningHub's machine (a stale
 * mount, a missing file in LoadImage/LoadVideo), so a new task may succeed.
 */
export function isMachineFailure(failedReason: Record<string, unknown> | null | undefined, errorMessage?: string | null): boolean {
  const reason = failedReason ?? {}
  const text = [reason.exception_type, reason.exception_message, reason.traceback, errorMessage]
    .filter((p): p is string => typeof p === 'string').join('\n')
  if (/Stale file handle/.test(text)) return true
  if (!machineFailure.test(text)) return false
  const node = [reason.node_name, reason.class_type, reason.node_type, reason.traceback, reason.exception_message]
    .filter((p): p is string => typeof p === 'string').join('\n')
  return fileLoaders.test(node)
}
