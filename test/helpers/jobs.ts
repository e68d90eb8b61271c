// Inserting jobs and accounts the way a product's client would: plain SQL.
import type { Sql } from './db.ts'

export const jobTables = ['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] as const
export type JobTable = (typeof jobTables)[number]

/** Minimal valid inputs for a ready (queued) job of each tool: RunningHub file names, so nothing is downloaded. */
export const readyInputs: Record<JobTable, Record<string, string>> = {
  upscaler_jobs: { input_file_name: 'in.png' },
  pose_changer_jobs: { person_file_name: 'person.png', reference_file_name: 'pose.png' },
  veste_ai_jobs: { person_file_name: 'person.png', clothing_file_name: 'shirt.png' },
  video_upscaler_jobs: { input_file_name: 'in.mp4' },
}

export interface InsertOptions {
  status?: 'queued' | 'pending'
  priority?: number
  createdAt?: Date
  userId?: string
  extra?: Record<string, unknown>
}

export async function insertJob(sql: Sql, table: JobTable, options: InsertOptions = {}): Promise<string> {
  const row: Record<string, unknown> = {
    ...readyInputs[table],
    status: options.status ?? 'queued',
    priority: options.priority ?? 0,
    ...options.extra,
  }
  if (options.createdAt) row.created_at = options.createdAt
  if (options.userId) row.user_id = options.userId
  const [inserted] = await sql`insert into ${sql(table)} ${sql(row)} returning id`
  return inserted!.id as string
}

/** Marks a tool's URL inputs as needing upload (rhpool fetches and uploads them) instead of passing them through. */
export async function markUpload(sql: Sql, table: JobTable): Promise<void> {
  await sql`
    update rhpool.tools t
       set node_map = (select jsonb_agg(case when e ? 'file' then e || '{"upload": true}' else e end order by n)
                         from jsonb_array_elements(t.node_map) with ordinality as m (e, n))
     where t.job_table = ${table}`
}

export interface AccountSpec {
  name: string
  slots: number
}

export const fingerprintOf = (name: string): string => `fp_${name}`.slice(0, 24)

/**
 * These accounts, as a dispatcher configured with exactly them would have
 * them: synced, and their keys held by `holder` (default 'test', live for a
 * day), so they take work. An account left out of a later call is no longer
 * held by that holder, as a dispatcher whose key was removed.
 */
export async function setAccounts(sql: Sql, accounts: AccountSpec[], holder = 'test'): Promise<void> {
  const list = accounts.map((a, index) => ({ name: a.name, slots: a.slots, position: index + 1, fingerprint: fingerprintOf(a.name) }))
  await sql.begin(async (tx) => {
    await holdKeys(tx as unknown as Sql, holder, accounts)
    await tx`select * from rhpool.sync_accounts(${tx.json(list)})`
    await holdKeys(tx as unknown as Sql, holder, accounts)
  })
}

/** A dispatcher's heartbeat: `holder` holds these accounts' keys (fingerprintOf) until staleSeconds after nowAt. */
export async function holdKeys(
  sql: Sql,
  holder: string,
  accounts: AccountSpec[],
  staleSeconds = 86_400,
  nowAt?: Date
): Promise<Array<Record<string, unknown>>> {
  const keys = accounts.map((a) => ({ name: a.name, fingerprint: fingerprintOf(a.name), slots: a.slots }))
  return nowAt
    ? await sql`select * from rhpool.dispatcher_heartbeat(${holder}, ${sql.json(keys)}, ${staleSeconds}, ${nowAt})`
    : await sql`select * from rhpool.dispatcher_heartbeat(${holder}, ${sql.json(keys)}, ${staleSeconds})`
}

export interface Claim {
  job_table: string
  job_id: string
  api_account: string
  claim_token: string
}

export async function claim(sql: Sql, maxJobs = 10, strategy?: 'fill-first' | 'spread', holder = 'test'): Promise<Claim[]> {
  return (await sql`select * from rhpool.claim_account_slot(${maxJobs}, ${holder}, 60, ${strategy ?? null})`) as unknown as Claim[]
}

export async function jobStatus(sql: Sql, table: string, id: string): Promise<Record<string, unknown>> {
  const [row] = await sql`select * from ${sql(table)} where id = ${id}`
  return row as Record<string, unknown>
}

/** Takes a claimed job through submission to running, as the dispatcher does. */
export async function runClaimed(sql: Sql, c: Claim, taskId: string): Promise<void> {
  const job = await sql`select rhpool.begin_submission(${c.job_table}, ${c.job_id}, ${c.claim_token}, 30) as job`
  if (!job[0]?.job) throw new Error(`begin_submission refused ${c.job_table} ${c.job_id}`)
  await sql`select rhpool.record_submission(${c.job_table}, ${c.job_id}, ${c.claim_token}, ${taskId})`
}

/** The token of a job's current claim (null when it has none). */
export async function claimToken(sql: Sql, table: string, id: string): Promise<string | null> {
  const [run] = await sql`select claim_token from rhpool.runs where job_table = ${table} and job_id = ${id}`
  return (run?.claim_token as string | null | undefined) ?? null
}

/**
 * Gives a job in flight another task id, as a test's setup (to send a captured
 * callback as it is): the run and the product's row together, as rhpool's own
 * transitions write them.
 */
export async function setTaskId(sql: Sql, table: string, id: string, taskId: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`update rhpool.runs set task_id = ${taskId} where job_table = ${table} and job_id = ${id}`
    await tx`select rhpool.begin_transition()`
    await tx`update ${tx(table)} set task_id = ${taskId} where id = ${id}`
  })
}
