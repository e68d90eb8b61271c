// The dispatcher's share of self-healing.
//
// The SQL rounds (rhpool.run_maintenance: expired leases, unresolved unknown
// outcomes, kept callbacks, slot drift, cooldowns, retention) run from pg_cron
// where it is installed, else from this timer. What needs HTTP always runs
// here: overdue running jobs are checked with RunningHub's query (with the key
// of the account that runs them), and accounts are probed for health.
import type { AccountConfig, Config } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import { pgCronRunsMaintenance, runMaintenance } from '../db/rhpool.ts'
import type { Logger } from '../log.ts'
import type { Metrics } from '../metrics.ts'
import type { RunningHubClient } from '../runninghub/client.ts'
import { probeAccounts } from './account-health.ts'
import { reconcileOverdueJobs } from './reconcile.ts'
import { Periodic } from '../periodic.ts'

export interface MaintenanceOptions {
  sql: Sql
  config: Config
  log: Logger
  metrics?: Metrics
  client: RunningHubClient
  accounts: () => Map<string, AccountConfig>
}

export class Maintenance {
  private readonly rounds: Periodic
  private lastProbe = 0
  /** True when pg_cron runs the SQL rounds, so this process leaves them to it. */
  pgCron = false

  constructor(private readonly options: MaintenanceOptions) {
    this.rounds = new Periodic(() => this.work(), options.config.dispatcher.maintenanceIntervalMs)
  }

  async start(): Promise<void> {
    const { sql, log, config } = this.options
    this.pgCron = await pgCronRunsMaintenance(sql)
    log.info(
      { intervalMs: config.dispatcher.maintenanceIntervalMs },
      this.pgCron
        ? 'maintenance: pg_cron runs rhpool.run_maintenance(); this process reconciles overdue jobs and probes accounts'
        : 'maintenance: pg_cron is not installed in this database (or not usable by this role), so this process runs rhpool.run_maintenance() on its own timer'
    )
    this.rounds.start()
  }

  stop(): Promise<void> {
    return this.rounds.stop()
  }

  /** One round now, or the one under way (also used by tests and the CLI). Never throws. */
  runOnce(): Promise<void> {
    return this.rounds.runNow()
  }

  private async work(): Promise<void> {
    const { sql, log, metrics } = this.options
    try {
      if (!this.pgCron) {
        for (const [action, count] of Object.entries(await runMaintenance(sql))) {
          if (typeof count === 'number' && count > 0) {
            metrics?.maintenance.inc({ action }, count)
            log.info({ action, count }, 'maintenance repaired')
          }
        }
      }
      await reconcileOverdueJobs(this.options)
      const probeEveryMs = 60_000
      if (Date.now() - this.lastProbe >= Math.min(probeEveryMs, this.options.config.dispatcher.maintenanceIntervalMs * 4)) {
        this.lastProbe = Date.now()
        await probeAccounts(this.options)
      }
    } catch (error) {
      log.error({ err: (error as Error).message }, 'maintenance round failed; the next one will retry')
    }
  }
}
