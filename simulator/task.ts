import type { Account } from './accounts.ts'
import type { TaskFaults } from './faults.ts'
import type { ApiFlavour, FailedReason, NodeInfo, TaskRecord, TaskResult, TaskStatus, Usage } from './types.ts'

/** A task inside the simulator; `record` is the ledger's copy, kept up to date in place. */
export interface SimTask {
  readonly taskId: string
  readonly account: Account
  readonly api: ApiFlavour
  readonly kind: 'ai-app' | 'workflow'
  readonly appId: string
  readonly nodeInfoList: NodeInfo[]
  readonly webhookUrl: string | null
  readonly instanceType: string | null
  readonly clientId: string
  readonly durationMs: number
  /** How the task will end if nobody cancels it. */
  readonly plannedOutcome: 'SUCCESS' | 'FAILED'
  readonly plannedFailure: FailedReason | null
  readonly faults: TaskFaults
  status: TaskStatus
  /** Its QUEUED time (queueDelayMs) is over: it runs as soon as the key has a free machine. */
  readyToRun: boolean
  results: TaskResult[] | null
  usage: Usage | null
  failedReason: FailedReason | null
  forgotten: boolean
  readonly record: TaskRecord
}

export function isActive(status: TaskStatus): boolean {
  return status === 'CREATE' || status === 'QUEUED' || status === 'RUNNING'
}
