// Status and operator calls: pool_status, job_view, dashboard_data,
// cancel_job and the status views (600-status.sql, 620-job-view.sql, 400-cancellation.sql, 630-dashboard.sql).
import type { Sql } from './connect.ts'
import { rows, value } from './rhpool-query.ts'

/** One account in pool_status (jsonb: numbers are numbers, timestamps ISO text, remainMoney numeric). */
export interface AccountView {
  name: string
  running: number
  maxSlots: number
  available: number
  enabled: boolean
  disabledReason: string | null
  disabledCode?: string | null
  keyHolders?: number
  cooldownUntil: string | null
  cooldownReason?: string | null
  /** Why no live dispatcher can use it (nobody holds its key); null while one does. */
  unheldReason?: string | null
  remainMoney?: string | number | null
  reportedConcurrency?: number | null
  configuredSlots?: number
  learnedLimit?: number | null
  limitReason?: string | null
  nextProbeAt?: string | null
}

/** pool_status(): the plan's JSON plus what an operator needs at a glance. */
export interface PoolStatus {
  totalMaxSlots: number
  totalRunning: number
  totalQueued: number
  strategy?: string | null
  liveDispatchers?: number
  accounts: AccountView[]
  /** Null when there are no tools. */
  queuedByTool: Record<string, number> | null
  oldestQueuedSeconds?: number
}

export async function poolStatus(sql: Sql): Promise<PoolStatus> {
  return (await value<PoolStatus>(sql`select rhpool.pool_status() as value`))!
}

/** job_view(): one job as the status API shows it; null when there is no such job. */
export function jobView(sql: Sql, jobTable: string, jobId: string): Promise<Record<string, unknown> | null> {
  return value(sql`select rhpool.job_view(${jobTable}, ${jobId}) as value`)
}

/** dashboard_data(): everything the status page shows, with this many recent jobs. */
export async function dashboardData(sql: Sql, recent: number): Promise<Record<string, unknown>> {
  return (await value<Record<string, unknown>>(sql`select rhpool.dashboard_data(${recent}::integer) as value`))!
}

/** cancel_job(): cancelled, cancel_requested, or already_<status>. */
export async function cancelJob(sql: Sql, jobTable: string, jobId: string, reason: string): Promise<string> {
  return String(await value<string>(sql`select rhpool.cancel_job(${jobTable}, ${jobId}, ${reason}) as value`))
}

export interface ToolRow {
  tool: string
  job_table: string
}

/** The tool registry, in the order of the given column. */
export function tools(sql: Sql, orderBy: keyof ToolRow = 'tool'): Promise<ToolRow[]> {
  return rows(sql`select tool, job_table from rhpool.tools order by ${sql(orderBy)}`)
}

/** The tool whose job table or tool name this is; null when none is. */
export async function findTool(sql: Sql, tableOrTool: string): Promise<ToolRow | null> {
  const [tool] = await rows<ToolRow>(sql`select tool, job_table from rhpool.tools where job_table = ${tableOrTool} or tool = ${tableOrTool}`)
  return tool ?? null
}

export async function jobExists(sql: Sql, jobTable: string, jobId: string): Promise<boolean> {
  return (await rows(sql`select 1 from rhpool.jobs where job_table = ${jobTable} and id = ${jobId}`)).length > 0
}

/** rhpool.queue_status: queue depth and oldest wait per tool. */
export interface QueueStatusRow {
  tool: string
  job_table: string
  queued: number
  oldest_wait_seconds: number
}

export function queueStatus(sql: Sql): Promise<QueueStatusRow[]> {
  return rows(sql`select tool, job_table, queued, oldest_wait_seconds from rhpool.queue_status`)
}

/** rhpool.account_status: per account, load, limits and why it is not taking work. */
export interface AccountStatusRow {
  name: string
  position: number
  max_slots: number
  running: number
  available: number
  enabled: boolean
  disabled_reason: string | null
  cooldown_until: Date | null
  cooldown_reason: string | null
  key_fingerprint: string | null
  /** numeric, as text. */
  remain_money: string | null
  remain_coins: string | null
  reported_concurrency: number | null
  health_checked_at: Date | null
  configured_slots: number
  learned_limit: number | null
  limit_reason: string | null
  next_probe_at: Date | null
  disabled_code: string | null
  key_holders: number
  unheld_reason: string | null
}

/** Every account, in its configured order. */
export function accountStatus(sql: Sql): Promise<AccountStatusRow[]> {
  return rows(sql`select * from rhpool.account_status order by position, name`)
}

export interface JobListFilter {
  status?: string
  tool?: string
  user?: string
  limit: number
}

/** A job as `rhpool jobs` lists it, with its place in the queue (a type, not an interface: it renders as a plain record). */
export type JobListRow = {
  tool: string
  id: string
  status: string
  account: string | null
  user: string | null
  attempts: number
  created_at: Date
  error_code: string | null
  position: number | null
}

/** The newest jobs matching the filter. */
export function listJobs(sql: Sql, f: JobListFilter): Promise<JobListRow[]> {
  return rows(sql`
    select j.tool, j.id, j.status, j.api_account as account, j.user_id as user, j.attempts, j.created_at, j.error_code,
           rhpool.queue_position(j.job_table, j.id) as position
    from rhpool.jobs j
    where (${f.status ?? null}::text is null or j.status = ${f.status ?? null})
      and (${f.tool ?? null}::text is null or j.tool = ${f.tool ?? null})
      and (${f.user ?? null}::text is null or j.user_id = ${f.user ?? null})
    order by j.created_at desc
    limit ${f.limit}`)
}

/** True when the database has rhpool's schema (claim_account_slot as this release calls it). */
export async function schemaReady(sql: Sql): Promise<boolean> {
  return (await value<boolean>(sql`select to_regprocedure('rhpool.claim_account_slot(integer,text,integer,text,text[],timestamp with time zone)') is not null as value`)) === true
}
