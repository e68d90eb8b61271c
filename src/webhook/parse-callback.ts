// RunningHub's end-of-task callback, in either shape, reduced to what the
// database needs. Classic: eventData is a JSON *string* of {code, msg, data:[{fileUrl, …}]}.
// v2: eventData is the v2 task object {status, results, usage, errorCode, …}.
import { z } from 'zod'
import { failureText, verdictFromTask, type TaskEnd } from '../runninghub/task-callback.ts'
import { isMachineFailure } from '../runninghub/classify.ts'

export type ParsedCallback =
  | { kind: 'ignored'; event: string; taskId: string | null }
  | { kind: 'task_end'; taskId: string | null; end: TaskEnd }
  /** A TASK_END that cannot be acted on as sent (no status, SUCCESS without results): RunningHub's query decides. */
  | { kind: 'unsettled'; taskId: string | null; reason: string }

export class CallbackFormatError extends Error {
  override name = 'CallbackFormatError'
}

const taskIdSchema = z
  .union([z.string().max(64), z.number()])
  .transform(String)
  .optional()
  .nullable()

const envelope = z.object({
  event: z.string().max(64),
  taskId: taskIdSchema,
  eventData: z
    .union([z.string(), z.record(z.string(), z.unknown())])
    .optional()
    .nullable(),
})

const v2Data = z.object({
  taskId: taskIdSchema,
  status: z.string().max(32).optional().nullable(),
  errorCode: z.union([z.string(), z.number()]).optional().nullable(),
  errorMessage: z.string().optional().nullable(),
  results: z.array(z.record(z.string(), z.unknown())).optional().nullable(),
  failedReason: z.record(z.string(), z.unknown()).optional().nullable(),
  usage: z.record(z.string(), z.unknown()).optional().nullable(),
  taskUsageList: z.array(z.unknown()).optional().nullable(),
})

const classicData = z.object({
  code: z.union([z.number(), z.string()]),
  msg: z.string().optional().nullable(),
  data: z
    .union([z.array(z.record(z.string(), z.unknown())), z.record(z.string(), z.unknown())])
    .optional()
    .nullable(),
})

/** The first issue, where it is (`root` when it is the value itself, e.g. the whole body). */
function describe(error: z.ZodError, root?: string): string {
  const issue = error.issues[0]!
  const where = issue.path.join('.') || root
  return where ? `${where}: ${issue.message}` : issue.message
}

export function parseCallback(body: unknown): ParsedCallback {
  const outer = envelope.safeParse(body)
  if (!outer.success) throw new CallbackFormatError(`not a RunningHub callback (${describe(outer.error, 'body')})`)
  const { event, taskId } = outer.data
  if (event !== 'TASK_END') return { kind: 'ignored', event, taskId: taskId ?? null }

  let data: unknown = outer.data.eventData
  if (typeof data === 'string') {
    try {
      data = JSON.parse(data)
    } catch {
      throw new CallbackFormatError('eventData is a string but not JSON')
    }
  }
  if (!data || typeof data !== 'object') throw new CallbackFormatError('TASK_END without eventData')

  if ('code' in data && !('status' in data)) {
    const classic = classicData.safeParse(data)
    if (!classic.success) throw new CallbackFormatError(`eventData (classic): ${describe(classic.error)}`)
    const { code, msg } = classic.data
    const items = Array.isArray(classic.data.data) ? classic.data.data : []
    if (Number(code) === 0) {
      if (items.length === 0) return { kind: 'unsettled', taskId: taskId ?? null, reason: 'SUCCESS without results' }
      const outputs = items.map((item) => ({ url: item.fileUrl, outputType: item.fileType, nodeId: item.nodeId }))
      const seconds = items.map((item) => Number(item.taskCostTime)).find((n) => Number.isFinite(n))
      const usage = seconds === undefined ? null : { taskCostTime: String(seconds) }
      return { kind: 'task_end', taskId: taskId ?? null, end: { status: 'SUCCESS', outputs, usage, error_code: null, error_message: null } }
    }
    const reason = !Array.isArray(classic.data.data) ? (classic.data.data?.failedReason as Record<string, unknown> | undefined) : undefined
    const message = failureText(reason) ?? msg ?? null
    return {
      kind: 'task_end',
      taskId: taskId ?? null,
      end: {
        status: 'FAILED',
        outputs: null,
        usage: null,
        error_code: String(code),
        error_message: message,
        retryable: isMachineFailure(reason, msg),
      },
    }
  }

  const v2 = v2Data.safeParse(data)
  if (!v2.success) throw new CallbackFormatError(`eventData: ${describe(v2.error)}`)
  const id = taskId ?? v2.data.taskId ?? null
  const verdict = verdictFromTask(data as Record<string, unknown>)
  if (verdict.kind === 'unsettled') return { kind: 'unsettled', taskId: id, reason: verdict.reason }
  if (verdict.kind === 'not_ended') {
    throw new CallbackFormatError(`TASK_END with status ${JSON.stringify(v2.data.status)} (expected SUCCESS, FAILED or CANCEL)`)
  }
  return { kind: 'task_end', taskId: id, end: verdict.end }
}
