// Public types of the RunningHub simulator. Other modules of rhpool code against these,
// so they describe what the simulator promises, not how it works inside.

export type TaskStatus = 'CREATE' | 'QUEUED' | 'RUNNING' | 'SUCCESS' | 'FAILED' | 'CANCEL'
export type ApiFlavour = 'v2' | 'classic'
export type CallbackShape = 'v2' | 'classic'

export interface NodeInfo {
  nodeId: string
  fieldName: string
  fieldValue: string | number | boolean
  description?: string
  fieldData?: string
}

/** Strings or null, as RunningHub sends them (samples 4 and 10: only thirdPartyConsumeMoney carries the cost). */
export interface Usage {
  consumeMoney: string | null
  consumeCoins: string | null
  taskCostTime: string
  thirdPartyConsumeMoney: string | null
}

export interface TaskResult {
  url: string
  nodeId: string
  outputType: string
  text: string | null
}

/** RunningHub's description of why a workflow failed while running (errorCode 805). */
export interface FailedReason {
  node_id: string
  node_name: string
  exception_type: string
  exception_message: string
  traceback: string
}

/** The key types queue/status reports. */
export type ApiKeyType = 'NORMAL' | 'SHARED' | 'EXCLUSIVE'

export interface AccountOptions {
  /** Tasks the key may have QUEUED or RUNNING at once (RunningHub's per-account limit). */
  concurrency?: number
  /** Wallet balance in money units, e.g. "100.00". Creates answer 416 once it is <= 0. */
  balance?: string | number
  coins?: string | number
  /** What GET /openapi/v2/queue/status reports as apiKeyType (default NORMAL). */
  apiKeyType?: ApiKeyType
  /**
   * Tasks the key may have waiting QUEUED beyond the `concurrency` that run (default 0):
   * RunningHub accepts work beyond what runs at once (runninghub-api.md), to a depth no
   * source gives. Creates answer 421 only once running + queued reach concurrency + queueDepth.
   */
  queueDepth?: number
}

/** Only the rules' own fields; `times`, `apiKey` and `path` narrow when a rule fires. */
export type FaultSpec =
  /** The endpoint answers this RunningHub error code in its own shape; nothing is created. */
  | { kind: 'errorCode'; code: number | string; message?: string }
  /** HTTP error status (500/502/503 typically; 429 also works) with a JSON or empty body. */
  | { kind: 'http5xx'; status?: number; body?: 'json' | 'empty' }
  /** A proxy's HTML error page (HTTP 502 by default, 200 is allowed). */
  | { kind: 'html'; status?: number }
  /**
   * The request waits delayMs before it is processed. If the client gave up meanwhile the
   * request is dropped unprocessed (nothing created) unless processIfClientGone is true.
   */
  | { kind: 'slow'; delayMs: number; processIfClientGone?: boolean }
  /** Processed normally (the task IS created), but the answer is withheld for hangMs (default: forever). */
  | { kind: 'acceptThenHang'; hangMs?: number }
  /** Processed normally, then the socket is destroyed without an answer. */
  | { kind: 'acceptThenDrop' }
  /** The next task's callback is sent `copies` times (default 2), all at once when concurrent. */
  | { kind: 'callbackDuplicate'; copies?: number; concurrent?: boolean }
  | { kind: 'callbackDelay'; delayMs: number }
  | { kind: 'callbackLost' }
  /** The task ends at once and its callback is delivered before the create call is answered. */
  | { kind: 'callbackEarly' }
  /**
   * After the real TASK_END: 'stale-event' sends a non-TASK_END event carrying RUNNING;
   * 'second-end' sends another TASK_END whose content contradicts the first.
   */
  | { kind: 'callbackOutOfOrder'; variant?: 'stale-event' | 'second-end' }
  /** The task runs and ends FAILED (errorCode 805 with a failedReason). */
  | { kind: 'taskFailure'; failedReason?: Partial<FailedReason> }
  /** Once the task ends (after afterMs more), query/status/outputs answer 807 for it. */
  | { kind: 'forgetTask'; afterMs?: number }

export type FaultKind = FaultSpec['kind']

export interface FaultFilter {
  /** How many times the rule fires (default 1; Infinity allowed). */
  times?: number
  /** Fire only for requests made with this key. */
  apiKey?: string
  /**
   * Fire only for request paths starting with this string (or matching the RegExp).
   * Without it, a rule fires on the create endpoints only.
   */
  path?: string | RegExp
}

export type Fault = FaultSpec & FaultFilter

export interface FaultHandle {
  readonly id: number
  /** How many more times the rule will fire. */
  remaining(): number
  cancel(): void
}

/** A probability per fault kind, or a probability plus the fault's parameters. */
export type FaultRate<K extends FaultKind> = number | ({ rate: number } & Partial<Omit<Extract<FaultSpec, { kind: K }>, 'kind'>>)

export type FaultRates = {
  [K in FaultKind]?: FaultRate<K>
} & {
  /** Codes drawn from when an errorCode fault is chosen at random (default: a mix of every class). */
  errorCodes?: Array<number | string>
}

export interface SimulatorConfig {
  taskDurationMs: number
  /** Per webappId/workflowId override of taskDurationMs. */
  taskDurationByApp: Record<string, number>
  /** Time a task spends QUEUED before it RUNs (it counts against concurrency either way). */
  queueDelayMs: number
  callbackShape: CallbackShape
  callbackRetry: { attempts: number; intervalMs: number }
  /** A receiver slower than this counts as a failed delivery (RunningHub resends). */
  callbackTimeoutMs: number
  /** What a task ends as when no fault says otherwise. */
  outcome: 'success' | 'failed'
  /** Probability (seeded PRNG) that a task ends FAILED. */
  failureRate: number
  faultRates: FaultRates
  /** HTTP status of "unknown key" answers (the body carries 802 either way). */
  unauthorizedHttpStatus: 200 | 401
  /** When set, other webappIds answer 901 WEBAPP_NOT_EXISTS. */
  knownWebappIds: string[] | null
  /** When set, other workflowIds answer 380 WORKFLOW_NOT_EXISTS. */
  knownWorkflowIds: string[] | null
  /**
   * GET /openapi/v2/queue/status: 'answers' (default); 'notFound' (HTTP 404, as if the
   * endpoint did not exist on this site); 'error' (code 1000, "still developing").
   */
  queueStatus: 'answers' | 'notFound' | 'error'
  /** Callbacks go only to loopback hosts unless this is true (the simulator must never reach a real host). */
  allowRemoteCallbacks: boolean
  /**
   * How a cancelled task reads. 'FAILED' (default): FAILED with 805, the most likely reading
   * (runninghub-api.md: "may have been interrupted or cancelled"). 'CANCEL': a CANCEL status,
   * which no official source shows.
   */
  cancelStatus: 'FAILED' | 'CANCEL'
  /** Send a TASK_END for a cancelled task (default false: no source says RunningHub does). */
  callbackOnCancel: boolean
  /**
   * Refuse (803) a nodeInfoList naming a file another key uploaded (default false: no source
   * says uploads are private; the production product uploaded with one key, ran on any).
   */
  uploadsPerKey: boolean
  /**
   * Where a task's cost is reported. 'thirdPartyConsumeMoney' (default): as the captured
   * callback (sample 10): consumeMoney and consumeCoins null. 'consumeMoney': consumeMoney
   * and consumeCoins carry it, thirdPartyConsumeMoney null (the documented fields).
   */
  costField: 'thirdPartyConsumeMoney' | 'consumeMoney'
}

export interface SimulatorOptions {
  port?: number
  host?: string
  /** Seed of the PRNG behind faultRates/failureRate, so chaos runs repeat. */
  seed?: number
  /**
   * Opt-in: task ids from this seed, the same sequence on every start (a RunningHub that
   * restarted its ids). By default ids are unique across runs and processes.
   */
  taskIdSeed?: number
  /** Limit for JSON bodies (default 1 MiB); larger bodies get a proxy's 413 page. */
  bodyLimitBytes?: number
  logger?: boolean
  config?: Partial<SimulatorConfig>
  accounts?: Array<{ apiKey: string } & AccountOptions>
}

// ---- ledger views (what tests inspect) ----

export type SubmissionOutcome = 'accepted' | 'http5xx' | 'html' | 'abandoned' | string

export interface SubmissionRecord {
  at: number
  /** Fingerprint of the key (never the key itself). */
  apiKey: string
  api: ApiFlavour
  path: string
  /** webappId or workflowId. */
  webappId: string
  nodeInfoList: unknown
  webhookUrl: string | null
  instanceType: string | null
  /** 'accepted', an error code such as '421', or the fault that answered ('http5xx', 'html', 'abandoned'). */
  outcome: SubmissionOutcome
  /** The request fault that shaped the exchange, if any (e.g. 'acceptThenHang'). */
  fault: FaultKind | null
  taskId: string | null
  /** Path of webhookUrl: the job reference rhpool puts in it. */
  jobRef: string | null
}

export interface TaskRecord {
  taskId: string
  apiKey: string
  api: ApiFlavour
  kind: 'ai-app' | 'workflow'
  appId: string
  status: TaskStatus
  webhookUrl: string | null
  jobRef: string | null
  createdAt: number
  startedAt: number | null
  endedAt: number | null
  forgotten: boolean
  faults: FaultKind[]
}

export interface CallbackAttempt {
  taskId: string
  at: number
  /** 1-based attempt within one delivery chain. */
  attempt: number
  /** Which copy (callbackDuplicate) or extra event ('stale-event'/'second-end') this is. */
  copy: number
  event: string
  status: number | null
  error: string | null
  durationMs: number
}

export interface ConcurrencyChange {
  at: number
  running: number
  delta: 1 | -1
  taskId: string
}

export interface KeyConcurrency {
  apiKey: string
  running: number
  maxConcurrency: number
  timeline: readonly ConcurrencyChange[]
}
