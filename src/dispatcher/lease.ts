// The claim lease, as the database holds it (the lease_seconds setting: one
// value for every dispatcher, changed at run time). The dispatcher needs it
// only to bound input downloads below it (inputDeadlineMs); claims and
// renewals read the setting themselves.
import { inputDeadlineMs } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import { leaseSeconds } from '../db/rhpool.ts'
import type { Logger } from '../log.ts'
import { Periodic } from '../periodic.ts'

export class LeaseSetting {
  seconds = 0
  private refreshes: Periodic | null = null

  constructor(
    private readonly sql: Sql,
    private readonly log: Logger,
    /** RHPOOL_INPUT_DEADLINE_MS, or null. */
    private readonly configuredDeadlineMs: number | null
  ) {}

  /** Reads the setting now and again every intervalMs. */
  async start(intervalMs: number): Promise<void> {
    await this.refresh()
    if (this.configuredDeadlineMs !== null && this.configuredDeadlineMs > this.inputDeadlineMs()) {
      this.log.warn(
        { configuredMs: this.configuredDeadlineMs, leaseSeconds: this.seconds, usedMs: this.inputDeadlineMs() },
        'RHPOOL_INPUT_DEADLINE_MS is more than half the lease (lease_seconds setting): downloads are cut at half the lease'
      )
    }
    this.refreshes = new Periodic(
      () => this.refresh(),
      intervalMs,
      (error) => this.log.warn({ err: error.message }, 'could not read lease_seconds; keeping the last value')
    )
    this.refreshes.start()
  }

  async stop(): Promise<void> {
    await this.refreshes?.stop()
  }

  inputDeadlineMs(): number {
    return inputDeadlineMs(this.seconds, this.configuredDeadlineMs)
  }

  private async refresh(): Promise<void> {
    this.seconds = await leaseSeconds(this.sql)
  }
}
