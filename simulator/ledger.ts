import { fingerprint } from './fingerprint.ts'
import type { CallbackAttempt, ConcurrencyChange, KeyConcurrency, SubmissionRecord, TaskRecord } from './types.ts'

interface KeyStats {
  running: number
  maxConcurrency: number
  timeline: ConcurrencyChange[]
}

/**
 * Everything that happened, for tests to check guarantees against: what was submitted,
 * how many tasks each key had at once, and every callback delivery. Keys appear only as
 * fingerprints; lookups accept the raw key and fingerprint it.
 */
export class Ledger {
  private readonly submissionList: SubmissionRecord[] = []
  private readonly callbackList: CallbackAttempt[] = []
  private readonly taskMap = new Map<string, TaskRecord>()
  private readonly keyStats = new Map<string, KeyStats>()
  /** What each key was charged, in cents, by the field its usage reported it in. */
  private readonly chargeMap = new Map<string, number>()

  // ---- writers (used by the simulator only) ----

  recordSubmission(record: SubmissionRecord): void {
    this.submissionList.push(record)
  }

  trackTask(record: TaskRecord): void {
    this.taskMap.set(record.taskId, record)
  }

  recordCallback(attempt: CallbackAttempt): void {
    this.callbackList.push(attempt)
  }

  /** Called at the instant a task is admitted (+1) or leaves QUEUED/RUNNING (-1). */
  recordConcurrency(keyFingerprint: string, delta: 1 | -1, taskId: string, at: number): number {
    let stats = this.keyStats.get(keyFingerprint)
    if (!stats) {
      stats = { running: 0, maxConcurrency: 0, timeline: [] }
      this.keyStats.set(keyFingerprint, stats)
    }
    stats.running += delta
    stats.maxConcurrency = Math.max(stats.maxConcurrency, stats.running)
    stats.timeline.push({ at, running: stats.running, delta, taskId })
    return stats.running
  }

  // ---- read-only views (copies, so a test cannot disturb the simulator) ----

  get submissions(): readonly SubmissionRecord[] {
    return this.submissionList.map((s) => ({ ...s }))
  }

  get callbacks(): readonly CallbackAttempt[] {
    return this.callbackList.map((c) => ({ ...c }))
  }

  callbacksFor(taskId: string): readonly CallbackAttempt[] {
    return this.callbackList.filter((c) => c.taskId === taskId).map((c) => ({ ...c }))
  }

  get tasks(): readonly TaskRecord[] {
    return [...this.taskMap.values()].map((t) => ({ ...t, faults: [...t.faults] }))
  }

  task(taskId: string): TaskRecord | undefined {
    const t = this.taskMap.get(taskId)
    return t && { ...t, faults: [...t.faults] }
  }

  recordCharge(keyFingerprint: string, cents: number): void {
    this.chargeMap.set(keyFingerprint, (this.chargeMap.get(keyFingerprint) ?? 0) + cents)
  }

  /** Money charged to a key (raw key or fingerprint) for its tasks, e.g. "0.14". */
  charged(apiKeyOrFingerprint: string): string {
    const fp =
      this.chargeMap.has(apiKeyOrFingerprint) || this.keyStats.has(apiKeyOrFingerprint)
        ? apiKeyOrFingerprint
        : fingerprint(apiKeyOrFingerprint)
    const cents = this.chargeMap.get(fp) ?? 0
    return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`
  }

  /** Accepts a raw key or its fingerprint. */
  concurrency(apiKeyOrFingerprint: string): KeyConcurrency {
    const fp = this.keyStats.has(apiKeyOrFingerprint) ? apiKeyOrFingerprint : fingerprint(apiKeyOrFingerprint)
    const stats = this.keyStats.get(fp) ?? { running: 0, maxConcurrency: 0, timeline: [] }
    return { apiKey: fp, running: stats.running, maxConcurrency: stats.maxConcurrency, timeline: [...stats.timeline] }
  }

  /** Highest number of tasks any single key had in flight at once. */
  get maxConcurrencyAnyKey(): number {
    let max = 0
    for (const stats of this.keyStats.values()) max = Math.max(max, stats.maxConcurrency)
    return max
  }

  allConcurrency(): KeyConcurrency[] {
    return [...this.keyStats.keys()].map((fp) => this.concurrency(fp))
  }

  /** Create requests grouped by the job reference found in their webhookUrl's path. */
  submissionsByJobRef(): Map<string, SubmissionRecord[]> {
    const groups = new Map<string, SubmissionRecord[]>()
    for (const s of this.submissionList) {
      if (s.jobRef === null) continue
      const group = groups.get(s.jobRef) ?? []
      group.push({ ...s })
      groups.set(s.jobRef, group)
    }
    return groups
  }

  /** Job references that got more than one task created: the "paid twice" check. */
  duplicateJobRefs(): Map<string, SubmissionRecord[]> {
    const duplicates = new Map<string, SubmissionRecord[]>()
    for (const [ref, group] of this.submissionsByJobRef()) {
      const created = group.filter((s) => s.taskId !== null)
      if (created.length > 1) duplicates.set(ref, created)
    }
    return duplicates
  }
}

/** What the simulator hands out: the ledger without its writers. */
export type LedgerView = Pick<
  Ledger,
  | 'submissions'
  | 'callbacks'
  | 'callbacksFor'
  | 'tasks'
  | 'task'
  | 'concurrency'
  | 'maxConcurrencyAnyKey'
  | 'allConcurrency'
  | 'submissionsByJobRef'
  | 'duplicateJobRefs'
  | 'charged'
>
