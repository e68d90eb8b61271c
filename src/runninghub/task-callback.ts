// RunningHub's v2 task object — from query, or as a v2 TASK_END callback's
// eventData — reduced to what the database applies. The one place that reads
// a task object's end, so a callback and a query answer about the same task
// can never be read differently.
import { isMachineFailure } from './classify.ts'

export interface TaskEnd {
  status: 'SUCCESS' | 'FAILED' | 'CANCEL'
  /** Every result item as RunningHub listed it; the database picks the tool's own. */
  outputs: Array<Record<string, unknown>> | null
  /** RunningHub's usage as sent, plus taskUsageList's per-task usage (see taskUsage). */
  usage: Record<string, unknown> | null
  error_code: string | null
  error_message: string | null
  /** FAILED on RunningHub's own machine: a new task (a new attempt) may succeed. */
  retryable?: boolean
}

/** What a task object says about the task's end. */
export type TaskVerdict =
  | { kind: 'ended'; end: TaskEnd }
  /** It claims an end that cannot be acted on as it is (no status, SUCCESS without results): ask query. */
  | { kind: 'unsettled'; reason: string }
  /** Not over (QUEUED, RUNNING, …). */
  | { kind: 'not_ended'; status: string }

const text = (v: unknown): string | null => (v === undefined || v === null || String(v) === '' ? null : String(v))

function isEmptyObject(value: unknown): boolean {
  return !value || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0)
}

/** RunningHub's failedReason as one line; null when there is none (`{}` on success). */
export function failureText(reason: unknown): string | null {
  if (isEmptyObject(reason) || typeof reason !== 'object') return null
  const r = reason as Record<string, unknown>
  const parts = [r.node_name, r.exception_type, r.exception_message].filter((p) => typeof p === 'string' && p !== '')
  return parts.length > 0 ? parts.join(': ') : JSON.stringify(reason).slice(0, 500)
}

/**
 * usage, with taskUsageList's entries (parent and sub-tasks) under
 * `taskUsageList`, each without its taskId: RunningHub sends that id as a bare
 * JSON number that has already lost precision, so it must never be matched on.
 */
function taskUsage(usage: unknown, list: unknown): Record<string, unknown> | null {
  const base = usage && typeof usage === 'object' && !Array.isArray(usage) ? (usage as Record<string, unknown>) : null
  if (!Array.isArray(list) || list.length === 0) return base
  const entries = list
    .filter((e) => e && typeof e === 'object')
    .map((e) => {
      const { taskId: _lossy, ...rest } = e as Record<string, unknown>
      return rest
    })
  return { ...(base ?? {}), taskUsageList: entries }
}

export function verdictFromTask(task: Record<string, unknown>): TaskVerdict {
  const rawStatus = task.status
  if (rawStatus === undefined || rawStatus === null || String(rawStatus) === '') {
    return { kind: 'unsettled', reason: 'TASK_END without a status' }
  }
  const status = String(rawStatus).toUpperCase()
  if (status !== 'SUCCESS' && status !== 'FAILED' && status !== 'CANCEL') return { kind: 'not_ended', status }
  const results = Array.isArray(task.results)
    ? (task.results.filter((r) => r && typeof r === 'object') as Array<Record<string, unknown>>)
    : []
  if (status === 'SUCCESS' && results.length === 0) return { kind: 'unsettled', reason: 'SUCCESS without results' }
  const usage = taskUsage(task.usage, task.taskUsageList)
  if (status !== 'FAILED') {
    return { kind: 'ended', end: { status, outputs: status === 'SUCCESS' ? results : null, usage, error_code: null, error_message: null } }
  }
  const reason = isEmptyObject(task.failedReason) ? null : (task.failedReason as Record<string, unknown>)
  const message = text(task.errorMessage)
  return {
    kind: 'ended',
    end: {
      status,
      outputs: null,
      usage,
      error_code: text(task.errorCode) ?? 'TASK_FAILED',
      error_message: failureText(reason) ?? message ?? 'the task failed',
      retryable: isMachineFailure(reason, message),
    },
  }
}

/** A query answer's end, or null while the task has not (decidably) ended. */
export function taskEndFromQuery(task: object): TaskEnd | null {
  const verdict = verdictFromTask(task as Record<string, unknown>)
  return verdict.kind === 'ended' ? verdict.end : null
}
