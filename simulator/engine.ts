import type { Account } from './accounts.ts'
import type { CallbackSender } from './callbacks.ts'
import type { TaskFaults } from './faults.ts'
import type { Ledger } from './ledger.ts'
import { formatCents, taskCost } from './money.ts'
import { randomHex } from './random.ts'
import { isActive, type SimTask } from './task.ts'
import type { Timers } from './timers.ts'
import type { ApiFlavour, FailedReason, NodeInfo, SimulatorConfig, TaskStatus, Usage } from './types.ts'

export interface AdmitRequest {
  account: Account
  api: ApiFlavour
  kind: 'ai-app' | 'workflow'
  appId: string
  nodeInfoList: NodeInfo[]
  webhookUrl: string | null
  instanceType: string | null
  faults: TaskFaults
}

export interface Admission {
  task: SimTask
  /** Status to report in the create answer: the status at the instant of admission. */
  statusAtAdmission: TaskStatus
  /** Set when the create answer must wait (callbackEarly: the callback goes first). */
  beforeAnswer: Promise<void> | null
}

/** Path of the webhook URL: where rhpool puts its job reference. */
export function jobRefOf(webhookUrl: string | null): string | null {
  if (!webhookUrl) return null
  try {
    return new URL(webhookUrl).pathname
  } catch {
    return webhookUrl
  }
}

/**
 * Task life: QUEUED → RUNNING → SUCCESS | FAILED (or CANCEL), per-key concurrency and
 * costs. Admission is synchronous, so the per-key count it checks is exact.
 */
export class TaskEngine {
  private readonly tasks = new Map<string, SimTask>()
  private readonly active = new Map<string, Set<SimTask>>()

  constructor(
    private readonly ledger: Ledger,
    private readonly timers: Timers,
    private readonly callbacks: CallbackSender,
    private readonly config: () => SimulatorConfig,
    private readonly random: () => number,
    private readonly nextTaskId: () => string
  ) {}

  /** Tasks the key has QUEUED or RUNNING now. */
  load(apiKey: string): { queued: number; running: number; total: number } {
    let queued = 0
    let running = 0
    for (const task of this.active.get(apiKey) ?? []) {
      if (task.status === 'RUNNING') running++
      else queued++
    }
    return { queued, running, total: queued + running }
  }

  /**
   * Admits a task, or answers 'full' when the key has as many tasks as it may run plus as
   * many as it may keep QUEUED (queueDepth).
   */
  tryAdmit(req: AdmitRequest): Admission | 'full' {
    const active = this.active.get(req.account.apiKey) ?? new Set<SimTask>()
    if (active.size >= req.account.concurrency + req.account.queueDepth) return 'full'

    const config = this.config()
    const now = Date.now()
    const taskId = this.uniqueTaskId()
    const failure = req.faults.taskFailure
    const fails = failure !== undefined || config.outcome === 'failed' || (config.failureRate > 0 && this.random() < config.failureRate)
    const faultKinds = Object.keys(req.faults) as SimTask['record']['faults']
    const task: SimTask = {
      taskId,
      account: req.account,
      api: req.api,
      kind: req.kind,
      appId: req.appId,
      nodeInfoList: req.nodeInfoList,
      webhookUrl: req.webhookUrl,
      instanceType: req.instanceType,
      clientId: randomHex(this.random, 32),
      durationMs: config.taskDurationByApp[req.appId] ?? config.taskDurationMs,
      plannedOutcome: fails ? 'FAILED' : 'SUCCESS',
      plannedFailure: fails ? failedReasonFor(failure?.failedReason) : null,
      faults: req.faults,
      status: 'QUEUED',
      readyToRun: false,
      results: null,
      usage: null,
      failedReason: null,
      forgotten: false,
      record: {
        taskId,
        apiKey: req.account.fingerprint,
        api: req.api,
        kind: req.kind,
        appId: req.appId,
        status: 'QUEUED',
        webhookUrl: req.webhookUrl,
        jobRef: jobRefOf(req.webhookUrl),
        createdAt: now,
        startedAt: null,
        endedAt: null,
        forgotten: false,
        faults: faultKinds,
      },
    }
    active.add(task)
    this.active.set(req.account.apiKey, active)
    this.tasks.set(taskId, task)
    this.ledger.trackTask(task.record)
    this.ledger.recordConcurrency(req.account.fingerprint, 1, taskId, now)

    if (req.faults.callbackEarly) {
      // The task is over before its creator hears it was accepted.
      this.setStatus(task, 'RUNNING')
      const delivered = this.finish(task, task.plannedOutcome)
      return { task, statusAtAdmission: 'QUEUED', beforeAnswer: delivered }
    }
    this.timers.after(config.queueDelayMs, () => {
      task.readyToRun = true
      this.startQueued(task.account.apiKey)
    })
    return { task, statusAtAdmission: 'QUEUED', beforeAnswer: null }
  }

  /** A task as its owner sees it: other keys' and forgotten tasks are "not found". */
  find(apiKey: string, taskId: string): SimTask | undefined {
    const task = this.tasks.get(taskId)
    if (!task || task.forgotten || task.account.apiKey !== apiKey) return undefined
    return task
  }

  /**
   * A cancelled task reads FAILED (805) by default, CANCEL with the cancelStatus option; its
   * callback is sent only with callbackOnCancel. Nothing is charged.
   */
  cancel(task: SimTask): void {
    if (!isActive(task.status)) return
    const config = this.config()
    task.failedReason = {
      node_id: '',
      node_name: '',
      exception_type: 'TaskCancelled',
      exception_message: 'task was cancelled by the user',
      traceback: '',
    }
    task.usage = usageOf(config.costField, 0, 0)
    void this.end(task, config.cancelStatus, config.callbackOnCancel)
  }

  forget(taskId: string): boolean {
    const task = this.tasks.get(taskId)
    if (!task) return false
    task.forgotten = true
    task.record.forgotten = true
    return true
  }

  /** Starts the key's oldest tasks that are ready, while fewer than `concurrency` run. */
  private startQueued(apiKey: string): void {
    const active = this.active.get(apiKey)
    if (!active) return
    for (const task of active) {
      if (this.load(apiKey).running >= task.account.concurrency) return
      if (task.status !== 'QUEUED' || !task.readyToRun) continue
      this.setStatus(task, 'RUNNING')
      this.timers.after(task.durationMs, () => {
        if (task.status === 'RUNNING') void this.finish(task, task.plannedOutcome)
      })
    }
  }

  private finish(task: SimTask, outcome: 'SUCCESS' | 'FAILED'): Promise<void> {
    const cost = taskCost(task.durationMs)
    task.usage = usageOf(this.config().costField, cost.cents, cost.seconds)
    // RunningHub charges for the machine time whether the workflow succeeded or not.
    task.account.balanceCents = Math.max(0, task.account.balanceCents - cost.cents)
    task.account.coins = Math.max(0, task.account.coins - cost.coins)
    this.ledger.recordCharge(task.account.fingerprint, cost.cents)
    if (outcome === 'SUCCESS') {
      task.results = [{ url: `https://rh-images.example/output/${task.taskId}.png`, nodeId: '9', outputType: 'png', text: null }]
    } else {
      task.failedReason = task.plannedFailure
    }
    return this.end(task, outcome)
  }

  private end(task: SimTask, status: 'SUCCESS' | 'FAILED' | 'CANCEL', callback = true): Promise<void> {
    const now = Date.now()
    this.setStatus(task, status)
    task.record.endedAt = now
    this.active.get(task.account.apiKey)?.delete(task)
    this.ledger.recordConcurrency(task.account.fingerprint, -1, task.taskId, now)
    const forget = task.faults.forgetTask
    if (forget) {
      if (forget.afterMs) this.timers.after(forget.afterMs, () => this.forget(task.taskId))
      else this.forget(task.taskId)
    }
    this.startQueued(task.account.apiKey)
    return callback ? this.callbacks.taskEnded(task) : Promise.resolve()
  }

  private setStatus(task: SimTask, status: TaskStatus): void {
    task.status = status
    task.record.status = status
    if (status === 'RUNNING') task.record.startedAt = Date.now()
  }

  private uniqueTaskId(): string {
    let id = this.nextTaskId()
    while (this.tasks.has(id)) id = this.nextTaskId()
    return id
  }
}

function failedReasonFor(overrides: Partial<FailedReason> | undefined): FailedReason {
  return {
    node_id: '9',
    node_name: 'KSampler',
    exception_type: 'RuntimeError',
    exception_message: 'simulated workflow failure',
    traceback: 'Traceback (most recent call last):\n  File "execution.py", line 1, in execute\nRuntimeError: simulated workflow failure',
    ...overrides,
  }
}

/**
 * A task's usage as RunningHub reports it: strings or null. By default only
 * thirdPartyConsumeMoney carries the cost, as in the captured callback (sample 10; sample 4
 * has every figure null); with costField 'consumeMoney' the documented fields do.
 */
function usageOf(costField: SimulatorConfig['costField'], cents: number, seconds: number): Usage {
  if (costField === 'consumeMoney') {
    return { consumeMoney: formatCents(cents), consumeCoins: String(cents), taskCostTime: String(seconds), thirdPartyConsumeMoney: null }
  }
  return { consumeMoney: null, consumeCoins: null, taskCostTime: String(seconds), thirdPartyConsumeMoney: formatCents(cents) }
}
