// The JSON shapes RunningHub answers with, built from a task. Kept apart from the engine so
// every endpoint and the callbacks describe a task the same way.
import { Code, errorName } from './error-codes.ts';
import type { SimTask } from './task.ts';
import type { Account } from './accounts.ts';
import type { FailedReason } from './types.ts';

export const promptTips = '{}';

export interface V2TaskObject {
  taskId: string;
  status: string;
  errorCode: string;
  errorMessage: string;
  results: SimTask['results'];
  clientId: string;
  promptTips: string;
  failedReason: FailedReason | null;
  usage: SimTask['usage'];
}

export function v2TaskObject(task: SimTask): V2TaskObject {
  const failed = task.status === 'FAILED';
  return {
    taskId: task.taskId,
    status: task.status,
    errorCode: failed ? Code.failed : '',
    errorMessage: failed ? errorName(Code.failed) : '',
    results: task.results,
    clientId: task.clientId,
    promptTips,
    failedReason: task.failedReason,
    usage: task.usage,
  };
}

/** The v2 answer to any failed call that would have returned a task. */
export function v2Error(code: string | number, message?: string, taskId = ''): V2TaskObject {
  return {
    taskId,
    status: '',
    errorCode: String(code),
    errorMessage: message ?? errorName(code),
    results: null,
    clientId: '',
    promptTips: '',
    failedReason: null,
    usage: null,
  };
}

export interface ClassicEnvelope {
  code: number | string;
  msg: string;
  data: unknown;
}

export function classicOk(data: unknown): ClassicEnvelope {
  return { code: 0, msg: 'success', data };
}

export function classicError(code: string | number, message?: string, data: unknown = null): ClassicEnvelope {
  const numeric = Number(code);
  return { code: Number.isInteger(numeric) ? numeric : code, msg: message ?? errorName(code), data };
}

/** Classic /outputs entries; also what the classic callback's eventData lists. */
export function classicOutputs(task: SimTask): Array<Record<string, string>> {
  return (task.results ?? []).map((r) => ({
    fileUrl: r.url,
    fileType: r.outputType,
    taskCostTime: task.usage?.taskCostTime ?? '0',
    nodeId: r.nodeId,
    consumeCoins: task.usage?.consumeCoins ?? '0',
    consumeMoney: task.usage?.consumeMoney ?? '0',
    thirdPartyConsumeMoney: task.usage?.thirdPartyConsumeMoney ?? '0',
  }));
}

/** The answer of classic /outputs for a task in any state. */
export function classicOutputsAnswer(task: SimTask): ClassicEnvelope {
  switch (task.status) {
    case 'SUCCESS':
      return classicOk(classicOutputs(task));
    case 'FAILED':
    case 'CANCEL':
      return classicError(Code.failed, undefined, { failedReason: task.failedReason });
    case 'RUNNING':
      return classicError(Code.running);
    default:
      return classicError(Code.queued);
  }
}

export function v2CallbackBody(task: SimTask, event = 'TASK_END'): Record<string, unknown> {
  const object = v2TaskObject(task);
  return {
    event,
    taskId: task.taskId,
    eventData: {
      ...object,
      parentTaskId: null,
      taskUsageList: [{ taskId: task.taskId, parentTaskId: null, taskStatus: task.status, usage: task.usage }],
    },
  };
}

export function classicCallbackBody(task: SimTask, event = 'TASK_END'): Record<string, unknown> {
  let envelope: ClassicEnvelope;
  if (task.status === 'SUCCESS') {
    // The classic callback lists only these four fields per file.
    envelope = classicOk(
      classicOutputs(task).map(({ fileUrl, fileType, taskCostTime, nodeId }) => ({ fileUrl, fileType, taskCostTime, nodeId })),
    );
  } else {
    envelope = classicOutputsAnswer(task);
  }
  // Classic eventData is a JSON *string*, not an object: clients must parse it twice.
  return { event, taskId: task.taskId, eventData: JSON.stringify(envelope) };
}

/** queue/status's data: the limit as a number, the counts as strings (samples, 9). */
export function queueStatusData(account: Account, load: { queued: number; running: number; total: number }) {
  return {
    apiKeyType: account.apiKeyType,
    concurrentLimit: account.concurrency,
    runningCount: String(load.running),
    queuedCount: String(load.queued),
    totalCurrentTasks: String(load.total),
  };
}
