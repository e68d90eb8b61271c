import { Agent, request } from 'undici'
import type { Ledger } from './ledger.ts'
import type { SimTask } from './task.ts'
import type { Timers } from './timers.ts'
import type { SimulatorConfig } from './types.ts'
import { classicCallbackBody, v2CallbackBody } from './views.ts'

/** What getWebhookDetail reports about a task's callback, in sample 7's keys and order. */
export interface WebhookDetail {
  id: string
  /** Masked, as RunningHub shows it. */
  userApiKey: string
  taskId: string
  webhookUrl: string
  /** The callback's eventData, as a JSON string (classic: the string it sent). */
  eventData: string
  callbackStatus: 'PENDING' | 'SUCCESS' | 'FAILED'
  /** The last failure, e.g. an I/O error; null until one happens. */
  callbackResponse: string | null
  retryCount: number
  /** Local time without zone, e.g. "2025-03-25T16:05:07". */
  createTime: string
  updateTime: string
}

/** The body sent, kept beside the detail so retryWebhook resends it as it was. */
const sentBodies = new WeakMap<WebhookDetail, Record<string, unknown>>()

function detailTime(date = new Date()): string {
  return date.toISOString().slice(0, 19)
}

const loopbackHosts = new Set(['localhost', '::1', '[::1]'])

function isLoopback(url: URL): boolean {
  return loopbackHosts.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname)
}

/**
 * Delivers end-of-task callbacks the way RunningHub does: POST JSON, no signature, resent
 * when the receiver fails, answers non-2xx or is too slow. Injected callback faults
 * (duplicate, delay, lost, out of order) are applied here.
 */
export class CallbackSender {
  private readonly agent = new Agent({ keepAliveTimeout: 1000, connections: 64 })
  private readonly stop = new AbortController()
  private readonly details = new Map<string, WebhookDetail>()
  private nextWebhookId = 1_000_000_000_000_000_000n

  constructor(
    private readonly ledger: Ledger,
    private readonly timers: Timers,
    private readonly config: () => SimulatorConfig
  ) {}

  /**
   * Starts delivery for a task that just ended. The promise resolves once the first attempt
   * of the first copy got an answer (or failed), which is what callbackEarly waits for.
   */
  async taskEnded(task: SimTask): Promise<void> {
    const webhookUrl = task.webhookUrl
    if (!webhookUrl) return
    // Cancellations are reported in the v2 shape whatever the configured shape is.
    const shape = task.status === 'CANCEL' ? 'v2' : this.config().callbackShape
    const body = shape === 'v2' ? v2CallbackBody(task) : classicCallbackBody(task)
    const now = detailTime()
    const detail: WebhookDetail = {
      id: String(this.nextWebhookId++),
      userApiKey: '******************',
      taskId: task.taskId,
      webhookUrl,
      eventData: typeof body.eventData === 'string' ? body.eventData : JSON.stringify(body.eventData),
      callbackStatus: task.faults.callbackLost ? 'FAILED' : 'PENDING',
      callbackResponse: null,
      retryCount: 0,
      createTime: now,
      updateTime: now,
    }
    sentBodies.set(detail, body)
    this.details.set(task.taskId, detail)

    if (task.faults.callbackLost) return
    const delayMs = task.faults.callbackDelay?.delayMs ?? 0
    if (delayMs > 0 && !(await this.timers.sleep(delayMs))) return
    const duplicate = task.faults.callbackDuplicate
    const copies = duplicate ? Math.max(1, duplicate.copies ?? 2) : 1

    let firstAttemptDone!: () => void
    const firstAttempt = new Promise<void>((resolve) => (firstAttemptDone = resolve))
    let firstCopyDone!: (delivered: boolean) => void
    const firstCopy = new Promise<boolean>((resolve) => (firstCopyDone = resolve))

    if (task.faults.callbackDuplicate?.concurrent) {
      for (let copy = 1; copy <= copies; copy++) {
        const chain = this.chain(task, webhookUrl, body, copy, copy === 1 ? firstAttemptDone : undefined, copy === 1 ? detail : undefined)
        if (copy === 1) void chain.then(firstCopyDone)
      }
    } else {
      void (async () => {
        for (let copy = 1; copy <= copies && !this.timers.isClosed; copy++) {
          const delivered = await this.chain(
            task,
            webhookUrl,
            body,
            copy,
            copy === 1 ? firstAttemptDone : undefined,
            copy === 1 ? detail : undefined
          )
          if (copy === 1) firstCopyDone(delivered)
        }
      })()
    }
    await firstAttempt

    // Out of order means after the real TASK_END was taken (answered 2xx). A contradicting
    // TASK_END that arrives *before* the true one is a false claim, which only checking the
    // callback with query can refute (RHPOOL_CONFIRM_CALLBACKS); that case is tested on its own.
    const outOfOrder = task.faults.callbackOutOfOrder
    if (outOfOrder) {
      void firstCopy.then((delivered) => {
        if (delivered && !this.timers.isClosed)
          void this.chain(task, webhookUrl, this.outOfOrderBody(task, shape, outOfOrder.variant ?? 'stale-event'), copies + 1)
      })
    }
  }

  detail(taskId: string): WebhookDetail | undefined {
    const detail = this.details.get(taskId)
    return detail && { ...detail }
  }

  /** retryWebhook: send the task's callback again, to webhookUrl if given. */
  retry(webhookId: string, webhookUrl: string | undefined, task: (taskId: string) => SimTask | undefined): boolean {
    const detail = [...this.details.values()].find((d) => d.id === webhookId)
    const target = detail && task(detail.taskId)
    if (!detail || !target) return false
    const url = webhookUrl || detail.webhookUrl
    detail.webhookUrl = url
    detail.callbackStatus = 'PENDING'
    void this.chain(target, url, sentBodies.get(detail)!, 1, undefined, detail)
    return true
  }

  close(): void {
    this.stop.abort()
    void this.agent.destroy().catch(() => undefined)
  }

  /** A late event that contradicts what the task really did. */
  private outOfOrderBody(task: SimTask, shape: 'v2' | 'classic', variant: 'stale-event' | 'second-end'): Record<string, unknown> {
    const contradicting: SimTask =
      variant === 'stale-event'
        ? { ...task, status: 'RUNNING', results: null, usage: null, failedReason: null }
        : task.status === 'SUCCESS'
          ? {
              ...task,
              status: 'FAILED',
              results: null,
              failedReason: {
                node_id: '9',
                node_name: 'SaveImage',
                exception_type: 'RuntimeError',
                exception_message: 'late contradicting TASK_END (injected)',
                traceback: '',
              },
            }
          : {
              ...task,
              status: 'SUCCESS',
              failedReason: null,
              results: [{ url: `https://rh-images.example/output/${task.taskId}-late.png`, nodeId: '9', outputType: 'png', text: null }],
            }
    const event = variant === 'stale-event' ? 'TASK_START' : 'TASK_END'
    return shape === 'v2' ? v2CallbackBody(contradicting, event) : classicCallbackBody(contradicting, event)
  }

  /** One delivery with its resends. */
  private async chain(
    task: SimTask,
    url: string,
    body: Record<string, unknown>,
    copy: number,
    onFirstAttempt?: () => void,
    detail?: WebhookDetail
  ): Promise<boolean> {
    const { attempts, intervalMs } = this.config().callbackRetry
    const event = String(body.event)
    const payload = JSON.stringify(body)
    const settle = (status: WebhookDetail['callbackStatus'], attempt: number) => {
      if (!detail) return
      detail.callbackStatus = status
      detail.retryCount = attempt - 1
      detail.updateTime = detailTime()
      if (status === 'FAILED') {
        const last = this.ledger.callbacksFor(task.taskId).at(-1)
        detail.callbackResponse = last?.error ?? (last?.status ? `HTTP ${last.status}` : 'no 2xx answer')
      }
    }
    try {
      for (let attempt = 1; attempt <= Math.max(1, attempts); attempt++) {
        if (this.timers.isClosed) return false
        const ok = await this.attempt(task, url, payload, attempt, copy, event)
        if (attempt === 1) onFirstAttempt?.()
        if (ok === true) {
          settle('SUCCESS', attempt)
          return true
        }
        if (ok === 'refused' || attempt >= attempts) {
          settle('FAILED', attempt)
          return false
        }
        if (!(await this.timers.sleep(intervalMs))) return false
      }
      return false
    } finally {
      onFirstAttempt?.()
    }
  }

  private async attempt(
    task: SimTask,
    target: string,
    payload: string,
    attempt: number,
    copy: number,
    event: string
  ): Promise<boolean | 'refused'> {
    const started = Date.now()
    const record = (status: number | null, error: string | null) =>
      this.ledger.recordCallback({
        taskId: task.taskId,
        at: started,
        attempt,
        copy,
        event,
        status,
        error,
        durationMs: Date.now() - started,
      })

    let url: URL
    try {
      url = new URL(target)
    } catch {
      record(null, 'invalid webhookUrl')
      return 'refused'
    }
    if (!isLoopback(url) && !this.config().allowRemoteCallbacks) {
      record(null, 'refused: the simulator only calls back loopback hosts')
      return 'refused'
    }
    try {
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json', 'user-agent': 'RunningHub-Simulator/1.0' },
        body: payload,
        signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(this.config().callbackTimeoutMs)]),
      })
      await response.body.dump().catch(() => undefined)
      record(response.statusCode, null)
      return response.statusCode >= 200 && response.statusCode < 300
    } catch (error) {
      if (this.stop.signal.aborted) return 'refused'
      record(null, describe(error))
      return false
    }
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'timeout'
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' ? code : error.message
  }
  return String(error)
}
