// The JSON shapes RunningHub answers with, built from a task. Kept apart from the engine so
// every endpoint and the callbacks describe a task the same way.
import { Code, errorName } from './error-codes.ts'
import type { SimTask } from './task.ts'
import type { Account } from './accounts.ts'
import type { FailedReason } from './types.ts'

/** A create answer's promptTips: ComfyUI's validation, as a JSON string (sample 3). */
export const promptTips = '{"result": true, "error": null, "outputs_to_execute": ["4"], "node_errors": {}}'

export interface V2TaskObject {
  taskId: string
  status: string
  errorCode: string
  errorMessage: string
  failedReason: FailedReason | Record<string, never> | null
  usage: SimTask['usage']
  results: SimTask['results']
  clientId: string
  promptTips: string
}

/** The answer of a v2 run call, in sample 3's keys and order. */
export function v2RunAnswer(task: SimTask, status: string): Record<string, unknown> {
  return { taskId: task.taskId, status, errorCode: '', errorMessage: '', results: null, clientId: task.clientId, promptTips }
}

/**
 * The task as v2 query describes it, in sample 4's keys and order: `failedReason: {}` unless
 * it failed; clientId and promptTips empty (sample 4 and 10).
 */
export function v2TaskObject(task: SimTask): V2TaskObject {
  const failed = task.status === 'FAILED'
  return {
    taskId: task.taskId,
    status: task.status,
    errorCode: failed ? Code.failed : '',
    errorMessage: failed ? errorName(Code.failed) : '',
    failedReason: task.failedReason ?? {},
    usage: task.usage,
    results: task.results,
    clientId: '',
    promptTips: '',
  }
}

/** The v2 answer to any failed call that would have returned a task. */
export function v2Error(code: string | number, message?: string, taskId = ''): V2TaskObject {
  return {
    taskId,
    status: '',
    errorCode: String(code),
    errorMessage: message ?? errorName(code),
    failedReason: null,
    usage: null,
    results: null,
    clientId: '',
    promptTips: '',
  }
}

export interface ClassicEnvelope {
  code: number | string
  msg: string
  data: unknown
}

export function classicOk(data: unknown): ClassicEnvelope {
  return { code: 0, msg: 'success', data }
}

export function classicError(code: string | number, message?: string, data: unknown = null): ClassicEnvelope {
  const numeric = Number(code)
  return { code: Number.isInteger(numeric) ? numeric : code, msg: message ?? errorName(code), data }
}

/** Classic /outputs entries; also what the classic callback's eventData lists. */
export function classicOutputs(task: SimTask): Array<Record<string, string | null>> {
  return (task.results ?? []).map((r) => ({
    fileUrl: r.url,
    fileType: r.outputType,
    taskCostTime: task.usage?.taskCostTime ?? '0',
    nodeId: r.nodeId,
    consumeCoins: task.usage?.consumeCoins ?? null,
    consumeMoney: task.usage?.consumeMoney ?? null,
    thirdPartyConsumeMoney: task.usage?.thirdPartyConsumeMoney ?? null,
  }))
}

/** The answer of classic /outputs for a task in any state. */
export function classicOutputsAnswer(task: SimTask): ClassicEnvelope {
  switch (task.status) {
    case 'SUCCESS':
      return classicOk(classicOutputs(task))
    case 'FAILED':
    case 'CANCEL':
      return classicError(Code.failed, undefined, { failedReason: task.failedReason })
    case 'RUNNING':
      return classicError(Code.running)
    default:
      return classicError(Code.queued)
  }
}

/**
 * A v2 TASK_END in sample 10's keys and order. taskUsageList[].taskId is a bare JSON number
 * that has lost precision, as RunningHub sends it: clients must never match on it.
 */
export function v2CallbackBody(task: SimTask, event = 'TASK_END'): Record<string, unknown> {
  const { taskId, status, errorCode, errorMessage, results, clientId, promptTips, failedReason, usage } = v2TaskObject(task)
  return {
    eventData: {
      taskId,
      status,
      errorCode,
      errorMessage,
      results: results && results.map(({ url, outputType, text }) => ({ url, outputType, text })),
      clientId,
      promptTips,
      failedReason,
      usage,
      parentTaskId: null,
      taskUsageList: [{ taskId: Number(task.taskId), parentTaskId: null, taskStatus: task.status, usage: task.usage }],
    },
    event,
    taskId: task.taskId,
  }
}

export function classicCallbackBody(task: SimTask, event = 'TASK_END'): Record<string, unknown> {
  let envelope: ClassicEnvelope
  if (task.status === 'SUCCESS') {
    // The classic callback lists only these four fields per file.
    envelope = classicOk(
      classicOutputs(task).map(({ fileUrl, fileType, taskCostTime, nodeId }) => ({ fileUrl, fileType, taskCostTime, nodeId }))
    )
  } else {
    envelope = classicOutputsAnswer(task)
  }
  // Classic eventData is a JSON *string*, not an object: clients must parse it twice.
  return { event, taskId: task.taskId, eventData: JSON.stringify(envelope) }
}

/** queue/status's data: the limit as a number, the counts as strings (samples, 9). */
export function queueStatusData(account: Account, load: { queued: number; running: number; total: number }) {
  return {
    apiKeyType: account.apiKeyType,
    concurrentLimit: account.concurrency,
    runningCount: String(load.running),
    queuedCount: String(load.queued),
    totalCurrentTasks: String(load.total),
  }
}
