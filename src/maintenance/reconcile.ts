// Running jobs whose callback is overdue are asked about with RunningHub's
// query, using the key of the account that runs them: finished ones are
// completed or failed as if the callback had come; ones RunningHub no longer
// knows fail (their terminal event lets the product refund); past the hard
// deadline they are cancelled at RunningHub and failed.
import { jobLabel } from '../log.ts'
import { taskEndFromQuery } from '../runninghub/task-callback.ts'
import { jsonbSafe } from '../db/json.ts'
import type { MaintenanceOptions } from './maintenance.ts'

export async function reconcileOverdueJobs(options: MaintenanceOptions): Promise<number> {
  const { sql, client, log, metrics } = options
  const accounts = options.accounts()
  const overdue = await sql`select * from rhpool.overdue_jobs()`
  let repaired = 0
  for (const row of overdue) {
    const job = jobLabel(row.job_table, row.job_id)
    const account = accounts.get(row.api_account)
    if (!account) continue
    const answer = await client.query(account.apiKey, row.task_id)
    const ended = answer.ok ? taskEndFromQuery(jsonbSafe(answer.value)) : null
    if (ended) {
      const status = ended.status
      const callback = ended
      const [result] = await sql`select rhpool.apply_reconciliation(${row.job_table}, ${row.job_id}, ${row.task_id}, ${sql.json(callback as never)}) as outcome`
      log.info({ job, account: account.name, taskId: row.task_id, status, outcome: result?.outcome }, 'overdue job reconciled with RunningHub')
      metrics?.maintenance.inc({ action: 'reconciled' })
      repaired++
      continue
    }
    if (!answer.ok && answer.kind === 'answer' && answer.cls === 'task_gone') {
      await sql`select rhpool.fail_job(${row.job_table}, ${row.job_id}, 'TASK_LOST', ${`RunningHub no longer knows task ${row.task_id} (${answer.code})`})`
      await sql`select rhpool.log_repair('task_lost_failed', ${row.job_table}, ${row.job_id}, ${account.name}, ${row.task_id})`
      log.warn({ job, account: account.name, taskId: row.task_id }, 'RunningHub no longer knows the task: job failed')
      metrics?.maintenance.inc({ action: 'task_lost' })
      repaired++
      continue
    }
    if (row.past_hard_deadline) {
      // Past the hard deadline the job ends whatever RunningHub says (or if it cannot be reached).
      const cancelled = await client.cancel(account.apiKey, row.task_id)
      const seen = answer.ok ? `still ${answer.value.status} at RunningHub` : `RunningHub did not answer (${answer.code})`
      await sql`select rhpool.fail_job(${row.job_table}, ${row.job_id}, 'DEADLINE_EXCEEDED', ${`${seen} past the hard deadline; cancelled`})`
      await sql`select rhpool.log_repair('deadline_cancelled', ${row.job_table}, ${row.job_id}, ${account.name}, ${cancelled.ok ? 'cancel accepted' : `cancel failed: ${cancelled.code}`})`
      log.warn({ job, account: account.name, taskId: row.task_id }, 'job past its hard deadline: cancelled at RunningHub and failed')
      metrics?.maintenance.inc({ action: 'deadline_cancelled' })
      repaired++
      continue
    }
    if (!answer.ok) log.warn({ job, account: account.name, code: answer.code }, 'could not ask RunningHub about an overdue job; will retry')
  }
  return repaired
}
