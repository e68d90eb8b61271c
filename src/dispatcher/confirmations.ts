// RHPOOL_CONFIRM_CALLBACKS: callbacks the webhook held as 'unconfirmed' are
// checked with RunningHub's query, using the key of the account that runs the
// task, and RunningHub's answer (not the callback's content) is applied.
import type { AccountConfig } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import { jobLabel, type Logger } from '../log.ts'
import type { RunningHubClient } from '../runninghub/client.ts'
import { verdictFromTask } from '../runninghub/task-callback.ts'
import { jsonbSafe } from '../db/json.ts'

export async function processConfirmations(sql: Sql, client: RunningHubClient, accounts: Map<string, AccountConfig>, log: Logger): Promise<number> {
  const pending = await sql`select * from rhpool.unconfirmed_callbacks(50)`
  let resolved = 0
  for (const row of pending) {
    const account = accounts.get(row.api_account)
    if (!account) continue
    const answer = await client.query(account.apiKey, row.task_id)
    let verdict: unknown
    if (answer.ok) {
      // Only a decidable end is applied; "not over" and "SUCCESS without results" refute the callback.
      const said = verdictFromTask(jsonbSafe(answer.value) as unknown as Record<string, unknown>)
      verdict = said.kind === 'ended' ? said.end : { status: said.kind === 'not_ended' ? said.status : 'UNSETTLED' }
    } else if (answer.kind === 'answer' && answer.cls === 'task_gone') verdict = { status: 'NOT_FOUND' }
    else {
      log.warn({ job: jobLabel(row.job_table, row.job_id), code: answer.code }, 'could not confirm a callback with RunningHub; will retry')
      continue
    }
    const [result] = await sql`select rhpool.resolve_unconfirmed(${row.delivery_id}, ${sql.json(verdict as never)}) as outcome`
    log.info({ job: jobLabel(row.job_table, row.job_id), taskId: row.task_id, outcome: result?.outcome }, 'callback checked with RunningHub')
    resolved++
  }
  return resolved
}
