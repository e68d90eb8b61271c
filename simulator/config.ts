import type { SimulatorConfig } from './types.ts'

export function defaultConfig(): SimulatorConfig {
  return {
    taskDurationMs: 50,
    taskDurationByApp: {},
    queueDelayMs: 0,
    callbackShape: 'v2',
    // getWebhookDetail (sample 7): retryCount 3, created 16:05:07, last tried 16:08:10 —
    // the first try and three resends about a minute apart.
    callbackRetry: { attempts: 4, intervalMs: 60_000 },
    callbackTimeoutMs: 5000,
    outcome: 'success',
    failureRate: 0,
    faultRates: {},
    unauthorizedHttpStatus: 200,
    knownWebappIds: null,
    knownWorkflowIds: null,
    allowRemoteCallbacks: false,
    cancelStatus: 'FAILED',
    callbackOnCancel: false,
    uploadsPerKey: false,
    costField: 'thirdPartyConsumeMoney',
    queueStatus: 'answers',
  }
}

export type ConfigPatch = Partial<Omit<SimulatorConfig, 'callbackRetry'>> & {
  callbackRetry?: Partial<SimulatorConfig['callbackRetry']>
}

/** Applies a partial change; callbackRetry may be given in part. */
export function mergeConfig(current: SimulatorConfig, patch: ConfigPatch): SimulatorConfig {
  const { callbackRetry, ...rest } = patch
  const next: SimulatorConfig = {
    ...current,
    ...(Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Partial<SimulatorConfig>),
    callbackRetry: { ...current.callbackRetry, ...callbackRetry },
  }
  if (!['v2', 'classic'].includes(next.callbackShape)) throw new RangeError(`callbackShape must be 'v2' or 'classic'`)
  if (!(next.callbackRetry.attempts >= 1)) throw new RangeError('callbackRetry.attempts must be >= 1')
  if (!['answers', 'notFound', 'error'].includes(next.queueStatus))
    throw new RangeError(`queueStatus must be 'answers', 'notFound' or 'error'`)
  if (!(next.taskDurationMs >= 0)) throw new RangeError('taskDurationMs must be >= 0')
  return next
}
