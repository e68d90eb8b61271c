// RunningHub's answers, classified once, here, by what the scheduler must do
// (the table in runninghub-api.md). Every other module acts on the class.
// Pure: the client (client.ts) does the HTTP and hands the status and body here.

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
assign('account_full', [
  421,
  415,
  814,
  1003,
  1011,
  1520,
  'TASK_QUEUE_MAXED',
  'TASK_INSTANCE_MAXED',
  'PERSONAL_QUEUE_COUNT_LIMIT',
  'TASK_USER_CONCURRENT_LIMIT',
])
assign('account_broken', [
  801,
  802,
  806,
  811,
  812,
  416,
  436,
  1002,
  1014,
  'APIKEY_UNAUTHORIZED',
  'APIKEY_USER_NOT_FOUND',
  'CORPAPIKEY_INSUFFICIENT_FUNDS',
  'TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET',
  'TASK_CREATE_FAILED_BY_NOT_ENOUGH_POWER_VALUE',
])
assign('bad_request', [
  301,
  380,
  412,
  433,
  435,
  803,
  809,
  810,
  901,
  1001,
  1007,
  1008,
  1009,
  1101,
  1501,
  1505,
  'PARAMS_INVALID',
  'WORKFLOW_NOT_EXISTS',
  'VALIDATE_PROMPT_FAILED',
  'APIKEY_INVALID_NODE_INFO',
  'WORKFLOW_NOT_SAVED_OR_NOT_RUNNING',
  'WEBAPP_NOT_EXISTS',
])
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
    .filter((p): p is string => typeof p === 'string')
    .join('\n')
  if (/Stale file handle/.test(text)) return true
  if (!machineFailure.test(text)) return false
  const node = [reason.node_name, reason.class_type, reason.node_type, reason.traceback, reason.exception_message]
    .filter((p): p is string => typeof p === 'string')
    .join('\n')
  return fileLoaders.test(node)
}

/** An answer as it came back: the HTTP status, the body as text, and the body as a JSON object when it is one. */
export interface RawAnswer {
  status: number
  json: Record<string, unknown> | null
  text: string
}

/** An answer that is not what was asked for, by class; `code` is RunningHub's, or rhpool's own (HTTP_<status>, NOT_JSON, MALFORMED_ANSWER). */
export interface AnswerError {
  ok: false
  kind: 'answer'
  cls: AnswerClass
  code: string
  message: string
  httpStatus: number
}

/** The body read without assuming JSON: a proxy's HTML page or a cut-off body gives `json: null`. */
export function readAnswer(status: number, text: string): RawAnswer {
  let json: Record<string, unknown> | null = null
  try {
    const parsed: unknown = JSON.parse(text)
    json = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null
  } catch {
    json = null
  }
  return { status, json, text }
}

function describeBody(answer: RawAnswer): string {
  const looksHtml = /^\s*</.test(answer.text)
  return looksHtml ? `HTTP ${answer.status} with an HTML page instead of JSON` : `HTTP ${answer.status} with a body that is not JSON`
}

/**
 * The class of an answer that is not a success: RunningHub's error code when it
 * gives one (errorCode, or a non-zero code), else the HTTP status, else
 * transient (NOT_JSON for a body that is not a JSON object, such as an HTML page;
 * MALFORMED_ANSWER for JSON that says nothing usable).
 */
export function classifyAnswer(answer: RawAnswer): AnswerError {
  const json = answer.json
  const code = json ? String(json.errorCode || json.code || '') : ''
  const message = json ? String(json.errorMessage || json.msg || json.message || '') : describeBody(answer)
  if (code && code !== '0') {
    return { ok: false, kind: 'answer', cls: classifyErrorCode(code), code, message: message || code, httpStatus: answer.status }
  }
  const byStatus = classifyHttpStatus(answer.status)
  if (byStatus)
    return {
      ok: false,
      kind: 'answer',
      cls: byStatus,
      code: `HTTP_${answer.status}`,
      message: message || `HTTP ${answer.status}`,
      httpStatus: answer.status,
    }
  return {
    ok: false,
    kind: 'answer',
    cls: 'transient',
    code: json ? 'MALFORMED_ANSWER' : 'NOT_JSON',
    message: message || 'unexpected answer',
    httpStatus: answer.status,
  }
}

const taskStates = new Set(['CREATE', 'QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCEL'])

/**
 * A v2 task endpoint's answer (run, query): the task object, or the error it is.
 * Some answers wrap the task in a {code, data} envelope; both are accepted.
 */
export function readTaskAnswer(answer: RawAnswer): { ok: true; task: Record<string, unknown>; taskId: string } | AnswerError {
  const json = answer.json
  const errorCode = json ? (json.errorCode ?? (json.code !== undefined && Number(json.code) !== 0 ? json.code : undefined)) : undefined
  const hasError = errorCode !== undefined && errorCode !== null && !['', '0'].includes(String(errorCode).trim())
  if (answer.status >= 200 && answer.status < 300 && json) {
    const task = (
      json.data && typeof json.data === 'object' && !Array.isArray(json.data) && 'taskId' in (json.data as object) ? json.data : json
    ) as Record<string, unknown>
    const taskId = task.taskId === undefined || task.taskId === null ? '' : String(task.taskId)
    // An answer about a real task is one, even with an errorCode: a FAILED
    // task carries its failure code (805). An error code beside an empty
    // taskId is an error answer, whatever state it also names: RunningHub
    // answers a full account with {"taskId":"","status":"FAILED","errorCode":"421",…}.
    const describesTask = taskId !== '' && typeof task.status === 'string' && taskStates.has(task.status.toUpperCase())
    if (!hasError || describesTask) return { ok: true, task, taskId }
  }
  return classifyAnswer(answer)
}
