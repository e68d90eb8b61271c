// rhpool.runs and the product's job rows in step: every unfinished job row has
// its run, with the same status and the same account (api_account = the run's
// account: set exactly while in flight), and no run is left for a finished job
// (or for a row that is gone). rhpool's transitions write both in one
// transaction, so one statement (one snapshot) must never see them disagree,
// at rest or in the middle of a chaos run.
import type postgres from 'postgres'

export interface OutOfStep {
  job_table: string
  job_id: string
  /** The product row's status and account (null: no unfinished row). */
  job_status: string | null
  api_account: string | null
  /** The run's (null: no run). */
  run_status: string | null
  run_account: string | null
  /** For a run without an unfinished row: what its row ended as (null: no row at all). */
  finished_as: string | null
}

export type OutOfStepKind = 'job without its run' | 'run of a finished job' | 'run without a job row' | 'run and job disagree'

export function kindOf(row: OutOfStep): OutOfStepKind {
  if (row.run_status === null) return 'job without its run'
  if (row.job_status === null) return row.finished_as === null ? 'run without a job row' : 'run of a finished job'
  return 'run and job disagree'
}

export function describe(row: OutOfStep): string {
  const job =
    row.job_status === null ? (row.finished_as ?? 'no row') : `${row.job_status}${row.api_account ? ` on ${row.api_account}` : ''}`
  const run = row.run_status === null ? 'no run' : `${row.run_status}${row.run_account ? ` on ${row.run_account}` : ''}`
  return `${row.job_table}/${row.job_id}: job ${job}, run ${run}`
}

/** Every job row and run out of step, in one statement. */
export async function runsOutOfStep(sql: postgres.Sql): Promise<OutOfStep[]> {
  const rows = await sql`
    with unfinished as (
      -- The job table by a join, not rhpool.jobs' per-row lookup: the full join below hashes on it.
      select t.job_table, j.id, j.status, j.api_account
      from rhpool.job_rows j
      join rhpool.tools t on t.relation = j.tableoid
      where not (j.status = any (rhpool.terminal_statuses()))
    )
    select coalesce(u.job_table, r.job_table) as job_table, coalesce(u.id, r.job_id)::text as job_id,
           u.status as job_status, u.api_account, r.status as run_status, r.account as run_account,
           (select f.status from rhpool.jobs f where u.id is null and f.job_table = r.job_table and f.id = r.job_id) as finished_as
    from unfinished u
    full join rhpool.runs r on r.job_table = u.job_table and r.job_id = u.id
    where u.id is null or r.job_id is null
       or u.status is distinct from r.status or u.api_account is distinct from r.account`
  return rows as unknown as OutOfStep[]
}
