// The inspection and control commands: status, accounts, jobs, cancel.
import pc from 'picocolors'
import type { Sql } from '../db/connect.ts'
import * as db from '../db/rhpool.ts'
import { UsageError } from './database.ts'
import { renderRows, renderStatus, type PoolStatus } from './render.ts'

export function readStatus(sql: Sql): Promise<PoolStatus> {
  return db.poolStatus(sql)
}

export async function showStatus(
  sql: Sql,
  options: { json?: boolean; watch?: boolean; intervalMs?: number },
  out: NodeJS.WritableStream = process.stdout
): Promise<void> {
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
  const rows = (await db.accountStatus(sql)).map((a) => ({
    name: a.name,
    slots: a.max_slots,
    running: a.running,
    available: a.available,
    enabled: a.enabled,
    disabled_reason: a.disabled_reason,
    cooldown_until: a.cooldown_until,
    key: a.key_fingerprint,
    holders: a.key_holders,
    unheld_reason: a.unheld_reason,
    balance: a.remain_money,
    reported_concurrency: a.reported_concurrency,
  }))
  out.write(
    options.json
      ? `${JSON.stringify(rows)}\n`
      : `${renderRows(rows, ['name', 'slots', 'running', 'available', 'enabled', 'disabled_reason', 'cooldown_until', 'key', 'holders', 'unheld_reason', 'balance', 'reported_concurrency'])}\n`
  )
}

const statuses = ['pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running', 'completed', 'failed', 'cancelled']

export async function showJobs(
  sql: Sql,
  options: { status?: string; tool?: string; user?: string; limit?: string; json?: boolean },
  out: NodeJS.WritableStream = process.stdout
): Promise<void> {
  if (options.status && !statuses.includes(options.status))
    throw new UsageError(`--status must be one of ${statuses.join(', ')}; got ${JSON.stringify(options.status)}`)
  const tools = (await db.tools(sql)).map((t) => t.tool)
  if (options.tool && !tools.includes(options.tool))
    throw new UsageError(`--tool must be one of ${tools.join(', ')}; got ${JSON.stringify(options.tool)}`)
  const limit = options.limit === undefined ? 50 : Number(options.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 10000)
    throw new UsageError(`--limit must be a whole number from 1 to 10000; got ${JSON.stringify(options.limit)}`)
  const rows = await db.listJobs(sql, { ...options, limit })
  out.write(
    options.json
      ? `${JSON.stringify(rows)}\n`
      : `${renderRows(rows, ['tool', 'id', 'status', 'position', 'account', 'user', 'attempts', 'created_at', 'error_code'])}\n`
  )
}

export async function cancelJob(sql: Sql, tableOrTool: string, id: string, out: NodeJS.WritableStream = process.stdout): Promise<void> {
  const tool = await db.findTool(sql, tableOrTool)
  if (!tool) {
    const known = (await db.tools(sql)).map((t) => t.tool)
    throw new UsageError(`unknown tool ${JSON.stringify(tableOrTool)}; known: ${known.join(', ')}`)
  }
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id))
    throw new UsageError(`job id must be a uuid; got ${JSON.stringify(id)}`)
  if (!(await db.jobExists(sql, tool.job_table, id))) throw new UsageError(`no job ${id} in ${tool.job_table}`)
  const result = await db.cancelJob(sql, tool.job_table, id, 'cancelled from the rhpool CLI')
  const said: Record<string, string> = {
    cancelled: pc.green('cancelled'),
    cancel_requested: pc.yellow("cancel requested: the dispatcher cancels the task at RunningHub with its account's key"),
  }
  out.write(`${said[result] ?? `nothing to do: the job is ${result.replace(/^already_/, 'already ')}`}\n`)
}
