// RunningHub's end-of-task callback, in either shape, reduced to what the
// database needs. Classic: eventData is a JSON *string* of {code, msg, data:[{fileUrl, …}]}.
// v2: eventData is the v2 task object {status, results, usage, errorCode, …}.
import { z } from 'zod'

export type ParsedCallback =
  | { kind: 'ignored'; event: string; taskId: string | null }
  | {
      kind: 'task_end'
      taskId: string | null
      status: 'SUCCESS' | 'FAILED' | 'CANCEL'
      outputs: Array<Record<string, unknown>> | null
      usage: Record<string, unknown> | null
      errorCode: string | null
      errorMessage: string | null
    }

export class CallbackFormatError extends Error {
  override name = 'CallbackFormatError'
}

const taskIdSchema = z.union([z.string().max(64), z.number()]).transform(String).optional().nullable()

const envelope = z.object({
  event: z.string().max(64),
  taskId: taskIdSchema,
  eventData: z.union([z.string(), z.record(z.string(), z.unknown())]).optional().nullable(),
})

const v2Data = z.object({
  taskId: taskIdSchema,
  status: z.string().max(32).optional().nullable(),
  errorCode: z.union([z.string(), z.number()]).optional().nullable(),
  errorMessage: z.string().optional().nullable(),
  results: z.array(z.record(z.string(), z.unknown())).optional().nullable(),
  failedReason: z.record(z.string(), z.unknown()).optional().nullable(),
  usage: z.record(z.string(), z.unknown()).optional().nullable(),
})

const classicData = z.object({
  code: z.union([z.number(), z.string()]),
  msg: z.string().optional().nullable(),
  data: z.union([z.array(z.record(z.string(), z.unknown())), z.record(z.string(), z.unknown())]).optional().nullable(),
})

function describe(error: z.ZodError): string {
  const issue = error.issues[0]!
  return `${issue.path.join('.') || 'body'}: ${issue.message}`
}

function failureText(reason: Record<string, unknown> | null | undefined): string | null {
  if (!reason) return null
  const parts = [reason.node_name, reason.exception_type, reason.exception_message].filter((p) => typeof p === 'string' && p !== '')
  return parts.length > 0 ? parts.join(': ') : JSON.stringify(reason).slice(0, 500)
}

export function parseCallback(body: unknown): ParsedCallback {
  const outer = envelope.safeParse(body)
  if (!outer.success) throw new CallbackFormatError(`not a RunningHub callback (${describe(outer.error)})`)
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
      const outputs = items.map((item) => ({ url: item.fileUrl, outputType: item.fileType, nodeId: item.nodeId }))
      const seconds = items.map((item) => Number(item.taskCostTime)).find((n) => Number.isFinite(n))
      return { kind: 'task_end', taskId: taskId ?? null, status: 'SUCCESS', outputs, usage: seconds === undefined ? null : { taskCostTime: String(seconds) }, errorCode: null, errorMessage: null }
    }
    const reason = !Array.isArray(classic.data.data) ? (classic.data.data?.failedReason as Record<string, unknown> | undefined) : undefined
    return { kind: 'task_end', taskId: taskId ?? null, status: 'FAILED', outputs: null, usage: null, errorCode: String(code), errorMessage: failureText(reason) ?? msg ?? null }
  }

  const v2 = v2Data.safeParse(data)
  if (!v2.success) throw new CallbackFormatError(`eventData: ${describe(v2.error)}`)
  const d = v2.data
  const status = (d.status ?? '').toUpperCase()
  if (status !== 'SUCCESS' && status !== 'FAILED' && status !== 'CANCEL') {
    throw new CallbackFormatError(`TASK_END with status ${JSON.stringify(d.status)} (expected SUCCESS, FAILED or CANCEL)`)
  }
  const errorCode = d.errorCode === undefined || d.errorCode === null || String(d.errorCode) === '' ? null : String(d.errorCode)
  return {
    kind: 'task_end',
    taskId: taskId ?? d.taskId ?? null,
    status,
    outputs: d.results ?? null,
    usage: d.usage ?? null,
    errorCode: status === 'FAILED' ? errorCode ?? 'TASK_FAILED' : null,
    errorMessage: status === 'FAILED' ? failureText(d.failedReason) ?? d.errorMessage ?? null : null,
  }
}
