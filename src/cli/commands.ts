// The inspection and control commands: status, accounts, jobs, cancel.
import pc from 'picocolors'
import type { Sql } from '../db/connect.ts'
import { UsageError } from './database.ts'
import { renderRows, renderStatus, type PoolStatus } from './render.ts'

export async function readStatus(sql: Sql): Promise<PoolStatus> {
  const [row] = await sql`select rhpool.pool_status() as status`
  return row!.status as PoolStatus
}

export async function showStatus(sql: Sql, options: { json?: boolean; watch?: boolean; intervalMs?: number }, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const once = async () => {
    const status = await readStatus(sql)
    if (options.json) out.write(`${JSON.stringify(status)}\n`)
    else out.write(`${options.watch ? '\x1b[2J\x1b[H' : ''}${renderStatus(status)}\n`)
  }
  await once()
  if (!options.watch) return
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => void once().catch(() => {}), options.intervalMs ?? 1000)
    process.once('SIGINT', () => {
      clearInterval(timer)
      resolve()
    })
  })
}

export async function showAccounts(sql: Sql, options: { json?: boolean }, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const rows = await sql`select name, max_slots as slots, running, available, enabled, disabled_reason, cooldown_until, key_fingerprint as key,
                                key_holders as holders, unheld_reason, remain_money as balance, reported_concurrency
                           from rhpool.account_status order by position, name`
  out.write(options.json ? `${JSON.stringify(rows)}\n` : `${renderRows(rows, ['name', 'slots', 'running', 'available', 'enabled', 'disabled_reason', 'cooldown_until', 'key', 'holders', 'unheld_reason', 'balance', 'reported_concurrency'])}\n`)
}

const statuses = ['pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running', 'completed', 'failed', 'cancelled']

export async function showJobs(
  sql: Sql,
  options: { status?: string; tool?: string; user?: string; limit?: string; json?: boolean },
  out: NodeJS.WritableStream = process.stdout
): Promise<void> {
  if (options.status && !statuses.includes(options.status)) throw new UsageError(`--status must be one of ${statuses.join(', ')}; got ${JSON.stringify(options.status)}`)
  const tools = (await sql`select tool from rhpool.tools order by tool`).map((r) => r.tool as string)
  if (options.tool && !tools.includes(options.tool)) throw new UsageError(`--tool must be one of ${tools.join(', ')}; got ${JSON.stringify(options.tool)}`)
  const limit = options.limit === undefined ? 50 : Number(options.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 10000) throw new UsageError(`--limit must be a whole number from 1 to 10000; got ${JSON.stringify(options.limit)}`)
  const rows = await sql`
    select j.tool, j.id, j.status, j.api_account as account, j.user_id as user, j.attempts, j.created_at, j.error_code,
           rhpool.queue_position(j.job_table, j.id) as position
    from rhpool.jobs j
    where (${options.status ?? null}::text is null or j.status = ${options.status ?? null})
      and (${options.tool ?? null}::text is null or j.tool = ${options.tool ?? null})
      and (${options.user ?? null}::text is null or j.user_id = ${options.user ?? null})
    order by j.created_at desc
    limit ${limit}`
  out.write(options.json ? `${JSON.stringify(rows)}\n` : `${renderRows(rows, ['tool', 'id', 'status', 'position', 'account', 'user', 'attempts', 'created_at', 'error_code'])}\n`)
}

export async function cancelJob(sql: Sql, tableOrTool: string, id: string, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const [tool] = await sql`select job_table from rhpool.tools where job_table = ${tableOrTool} or tool = ${tableOrTool}`
  if (!tool) {
    const known = (await sql`select tool from rhpool.tools order by tool`).map((r) => r.tool)
    throw new UsageError(`unknown tool ${JSON.stringify(tableOrTool)}; known: ${known.join(', ')}`)
  }
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) throw new UsageError(`job id must be a uuid; got ${JSON.stringify(id)}`)
  const [exists] = await sql`select 1 from rhpool.jobs where job_table = ${tool.job_table} and id = ${id}`
  if (!exists) throw new UsageError(`no job ${id} in ${tool.job_table}`)
  const [row] = await sql`select rhpool.cancel_job(${tool.job_table}, ${id}, 'cancelled from the rhpool CLI') as result`
  const result = String(row!.result)
  const said: Record<string, string> = {
    cancelled: pc.green('cancelled'),
    cancel_requested: pc.yellow('cancel requested: the dispatcher cancels the task at RunningHub with its account\'s key'),
  }
  out.write(`${said[result] ?? `nothing to do: the job is ${result.replace(/^already_/, 'already ')}`}\n`)
}
