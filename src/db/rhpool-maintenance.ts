// Maintenance's rhpool calls: the SQL rounds, overdue jobs reconciled with
// RunningHub, account health (500-maintenance.sql, 140-account-health.sql).
import type { Sql } from './connect.ts'
import type { CallbackVerdict } from './rhpool-callbacks.ts'
import { json, rows, run, value } from './rhpool-query.ts'

/** What one round repaired, per step; or why it did nothing. */
export interface MaintenanceSummary {
  leasesExpired?: number
  unknownOutcomesFailed?: number
  keptCallbacksApplied?: number
  cooldownsEnded?: number
  learnedLimitsOutgrown?: number
  historyPruned?: number
  /** Another round was running. */
  skipped?: string
}

export async function runMaintenance(sql: Sql): Promise<MaintenanceSummary> {
  return (await value<MaintenanceSummary>(sql`select rhpool.run_maintenance() as value`)) ?? {}
}

/** Folds every journal (rhpool.fold_journals: the queue's counts, the spend's hours): how many queue moves; 0 when another fold runs. */
export async function foldJournals(sql: Sql): Promise<number> {
  return (await value<number>(sql`select rhpool.fold_journals() as value`)) ?? 0
}

/** True when pg_cron is usable by this role and its rhpool-maintenance job is active (db/cron/100-schedule.sql). */
export async function pgCronRunsMaintenance(sql: Sql): Promise<boolean> {
  // A database owner that is not a superuser may find pg_cron installed but
  // schema cron closed to it (db/cron/100-schedule.sql then scheduled nothing).
  const installed = await value<boolean>(sql`
    select case when exists (select 1 from pg_extension where extname = 'pg_cron') then has_schema_privilege('cron', 'usage') else false end as value`)
  if (!installed) return false
  return (await value<boolean>(sql`select exists (select 1 from cron.job where jobname = 'rhpool-maintenance' and active) as value`)) === true
}

/** overdue_jobs' row: a running job whose callback is overdue. */
export interface OverdueJob {
  job_table: string
  job_id: string
  api_account: string
  task_id: string
  past_hard_deadline: boolean
}

/** Each overdue job is handed out once per reconcile interval. */
export function overdueJobs(sql: Sql): Promise<OverdueJob[]> {
  return rows(sql`select * from rhpool.overdue_jobs()`)
}

/** RunningHub's query says the task ended: applied as its callback would be. The outcome. */
export function applyReconciliation(sql: Sql, job: OverdueJob, end: CallbackVerdict): Promise<string | null> {
  return value(sql`select rhpool.apply_reconciliation(${job.job_table}, ${job.job_id}, ${job.task_id}, ${json(sql, end)}) as value`)
}

/** The job fails whatever its claim: its status afterwards. */
export function failJob(sql: Sql, jobTable: string, jobId: string, code: string, message: string): Promise<string | null> {
  return value(sql`select rhpool.fail_job(${jobTable}, ${jobId}, ${code}, ${message}) as value`)
}

export interface Repair {
  action: string
  jobTable?: string | null
  jobId?: string | null
  account: string | null
  detail: string | null
}

/** A line in the repair log. */
export function logRepair(sql: Sql, r: Repair): Promise<void> {
  return run(sql`select rhpool.log_repair(${r.action}, ${r.jobTable ?? null}, ${r.jobId ?? null}, ${r.account}, ${r.detail})`)
}

/** The min_balance setting (0: none), as a number. */
export async function minBalance(sql: Sql): Promise<number> {
  return Number((await value<string>(sql`select rhpool.setting('min_balance', '0')::numeric as value`)) ?? 0)
}

export interface AccountHealth {
  /** Decimal strings, straight into numeric columns: no float rounding. */
  remainMoney: string | null
  remainCoins: string | null
  reportedConcurrency: number | null
}

export function recordAccountHealth(sql: Sql, account: string, health: AccountHealth): Promise<void> {
  return run(sql`select rhpool.record_account_health(${account}, ${health.remainMoney}::numeric, ${health.remainCoins}::numeric, ${health.reportedConcurrency})`)
}


/** Out of rotation for a balance below the minimum, logged in the same transaction; true when it was in rotation. */
export async function disableLowBalanceAccount(sql: Sql, account: string, balance: string, minimum: number): Promise<boolean> {
  return (await value<boolean>(sql`select rhpool.disable_low_balance_account(${account}, ${balance}::numeric, ${minimum}) as value`)) === true
}

/** True when it was disabled for its key's state and is enabled again (never an operator's disable). */
export async function reenableRecoveredAccount(sql: Sql, account: string): Promise<boolean> {
  return (await value<boolean>(sql`select rhpool.reenable_recovered_account(${account}) as value`)) === true
}
