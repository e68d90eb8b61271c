// Folds the queue's journal into its counts (db/functions/025-queue-counts.sql)
// every RHPOOL_QUEUE_FOLD_INTERVAL_MS, so that status, metrics and queue
// positions read the counts and a journal of about one interval's moves.
// Every dispatcher runs one; a fold that finds another under way returns at
// once. Maintenance folds too (pg_cron's minute), for a pool with no dispatcher.
import type { Sql } from '../db/connect.ts'
import { foldQueueJournal } from '../db/rhpool.ts'
import type { Logger } from '../log.ts'
import { Periodic } from '../periodic.ts'

export class QueueFolder {
  private failing = false
  private readonly periodic: Periodic

  constructor(private readonly options: { sql: Sql; log: Logger; intervalMs: number }) {
    this.periodic = new Periodic(() => this.fold(), options.intervalMs)
  }

  start(): void {
    this.periodic.start()
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }

  private async fold(): Promise<void> {
    try {
      await foldQueueJournal(this.options.sql)
      if (this.failing) this.options.log.info('queue counts: folding again')
      this.failing = false
    } catch (error) {
      // Reads stay exact meanwhile (they add the journal); they only get slower as it grows. Said once per outage.
      if (!this.failing) this.options.log.warn({ err: (error as Error).message }, 'queue counts: fold failed; will try again')
      this.failing = true
    }
  }
}
