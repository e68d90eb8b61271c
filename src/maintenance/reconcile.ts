// Running jobs whose callback is overdue are asked about with RunningHub's
// query, using the key of the account that runs them: finished ones are
// completed or failed as if the callback had come; ones RunningHub no longer
// knows fail (their terminal event lets the product refund); past the hard
// deadline they are cancelled at RunningHub and failed.
import { jobLabel } from '../log.ts'
import { taskEndFromQuery } from '../runninghub/task-callback.ts'
import { jsonbSafe } from '../db/json.ts'
import { applyReconciliation, failJob, logRepair, overdueJobs } from '../db/rhpool.ts'
import type { MaintenanceOptions } from './maintenance.ts'

export async function reconcileOverdueJobs(options: MaintenanceOptions): Promise<number> {
  const { sql, client, log, metrics } = options
  const accounts = options.accounts()
  const overdue = await overdueJobs(sql)
  let repaired = 0
  for (const row of overdue) {
    const job = jobLabel(row.job_table, row.job_id)
    const account = accounts.get(row.api_account)
    if (!account) continue
    const answer = await client.query(account.apiKey, row.task_id)
    const ended = answer.ok ? taskEndFromQuery(jsonbSafe(answer.value)) : null
    if (ended) {
      const outcome = await applyReconciliation(sql, row, ended)
      log.info({ job, account: account.name, taskId: row.task_id, status: ended.status, outcome }, 'overdue job reconciled with RunningHub')
      metrics?.maintenance.inc({ action: 'reconciled' })
      repaired++
      continue
    }
    if (!answer.ok && answer.kind === 'answer' && answer.cls === 'task_gone') {
      await failJob(sql, row.job_table, row.job_id, 'TASK_LOST', `RunningHub no longer knows task ${row.task_id} (${answer.code})`)
      await logRepair(sql, {
        action: 'task_lost_failed',
        jobTable: row.job_table,
        jobId: row.job_id,
        account: account.name,
        detail: row.task_id,
      })
      log.warn({ job, account: account.name, taskId: row.task_id }, 'RunningHub no longer knows the task: job failed')
      metrics?.maintenance.inc({ action: 'task_lost' })
      repaired++
      continue
    }
    if (row.past_hard_deadline) {
      // Past the hard deadline the job ends whatever RunningHub says (or if it cannot be reached).
      const cancelled = await client.cancel(account.apiKey, row.task_id)
      const seen = answer.ok ? `still ${answer.value.status} at RunningHub` : `RunningHub did not answer (${answer.code})`
      await failJob(sql, row.job_table, row.job_id, 'DEADLINE_EXCEEDED', `${seen} past the hard deadline; cancelled`)
      await logRepair(sql, {
        action: 'deadline_cancelled',
        jobTable: row.job_table,
        jobId: row.job_id,
        account: account.name,
        detail: cancelled.ok ? 'cancel accepted' : `cancel failed: ${cancelled.code}`,
      })
      log.warn({ job, account: account.name, taskId: row.task_id }, 'job past its hard deadline: cancelled at RunningHub and failed')
      metrics?.maintenance.inc({ action: 'deadline_cancelled' })
      repaired++
      continue
    }
    if (!answer.ok) log.warn({ job, account: account.name, code: answer.code }, 'could not ask RunningHub about an overdue job; will retry')
  }
  return repaired
}
