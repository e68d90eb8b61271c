// Folds the journals (rhpool.fold_journals: the queue's counts,
// db/functions/025-queue-counts.sql, and the spend's hours, 027-spend-by-hour.sql)
// every RHPOOL_QUEUE_FOLD_INTERVAL_MS, so that status, metrics, queue positions
// and the dashboard read the sums and a journal of about one interval's rows.
// Every dispatcher runs one; a fold that finds another under way returns at
// once. Maintenance folds too (pg_cron's minute), for a pool with no dispatcher.
import type { Sql } from '../db/connect.ts'
import { foldJournals } from '../db/rhpool.ts'
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
      await foldJournals(this.options.sql)
      if (this.failing) this.options.log.info('queue counts: folding again')
      this.failing = false
    } catch (error) {
      // Reads stay exact meanwhile (they add the journal); they only get slower as it grows. Said once per outage.
      if (!this.failing) this.options.log.warn({ err: (error as Error).message }, 'queue counts: fold failed; will try again')
      this.failing = true
    }
  }
}
