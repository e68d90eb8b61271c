// Cancelling a job RunningHub already has: its cancel endpoint, called with the
// key of the account that runs the task, then the job ends cancelled.
import type { AccountConfig } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import { finishCancel, pendingCancellations } from '../db/rhpool.ts'
import { jobLabel, type Logger } from '../log.ts'
import type { RunningHubClient } from '../runninghub/client.ts'

export async function processCancellations(
  sql: Sql,
  client: RunningHubClient,
  accounts: Map<string, AccountConfig>,
  log: Logger
): Promise<number> {
  const pending = await pendingCancellations(sql, 50)
  let done = 0
  for (const row of pending) {
    const job = jobLabel(row.job_table, row.job_id)
    const account = accounts.get(row.api_account)
    if (!account) continue // another dispatcher holds this account's key
    if (row.task_id) {
      const answer = await client.cancel(account.apiKey, row.task_id)
      // RunningHub no longer knows the task (task_gone): there is nothing left to stop.
      if (!answer.ok && !(answer.kind === 'answer' && answer.cls === 'task_gone')) {
        log.warn({ job, account: account.name, code: answer.code }, 'cancel at RunningHub failed; will try again')
        continue
      }
    }
    await finishCancel(sql, row.job_table, row.job_id)
    log.info({ job, account: account.name, taskId: row.task_id }, 'cancelled')
    done++
  }
  return done
}
