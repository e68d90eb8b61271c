// RunningHub's task object (from query) in the shape the database applies:
// the same fields a TASK_END callback carries. Null when the task has not ended.
import type { RunningHubTask } from './client.ts'

export interface TaskEnd {
  status: 'SUCCESS' | 'FAILED' | 'CANCEL'
  outputs: unknown
  usage: unknown
  error_code: string | null
  error_message: string | null
}

export function taskEndFromQuery(task: RunningHubTask): TaskEnd | null {
  const status = String(task.status ?? '').toUpperCase()
  if (status !== 'SUCCESS' && status !== 'FAILED' && status !== 'CANCEL') return null
  const failedReason = task.failedReason as Record<string, unknown> | null | undefined
  return {
    status,
    outputs: task.results ?? null,
    usage: task.usage ?? null,
    error_code: status === 'FAILED' ? task.errorCode || 'TASK_FAILED' : null,
    error_message: status === 'FAILED' ? String(failedReason?.exception_message ?? task.errorMessage ?? 'the task failed') : null,
  }
}
