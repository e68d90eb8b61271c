// Terminal rendering of the pool's state: tables and slot bars a person reads
// at a glance. Pure functions from data to text, so they are easy to test.
import Table from 'cli-table3'
import pc from 'picocolors'

import type { AccountView, PoolStatus } from '../db/rhpool.ts'

export type { AccountView, PoolStatus }

// Colour only for a person at a terminal; plain text for pipes, logs and tests.
const tableStyle = (): { head: string[]; border: string[] } =>
  process.stdout.isTTY ? { head: ['cyan'], border: ['grey'] } : { head: [], border: [] }

export function slotBar(running: number, slots: number): string {
  const filled = Math.min(running, slots)
  const over = Math.max(0, running - slots)
  return pc.green('■'.repeat(filled)) + pc.dim('□'.repeat(Math.max(0, slots - filled))) + pc.red('■'.repeat(over))
}

function accountState(a: AccountView): string {
  if (!a.enabled) return pc.red(`disabled: ${a.disabledReason ?? 'no reason given'}`)
  if (a.unheldReason) return pc.yellow(a.unheldReason)
  if (a.cooldownUntil) {
    const seconds = Math.max(0, Math.round((Date.parse(a.cooldownUntil) - Date.now()) / 1000))
    return pc.yellow(`cooling down ${seconds}s${a.cooldownReason ? ` (${a.cooldownReason})` : ''}`)
  }
  return pc.green('ready')
}

export function renderStatus(status: PoolStatus): string {
  const accounts = new Table({ head: ['account', 'slots', 'running', 'free', 'state', 'balance'], style: tableStyle() })
  for (const a of status.accounts) {
    accounts.push([
      a.name,
      slotBar(a.running, a.maxSlots),
      `${a.running}/${a.maxSlots}`,
      String(a.available),
      accountState(a),
      a.remainMoney == null ? '' : String(a.remainMoney),
    ])
  }
  const tools = new Table({ head: ['tool', 'queued'], style: tableStyle() })
  for (const [tool, queued] of Object.entries(status.queuedByTool ?? {})) tools.push([tool, String(queued)])
  const headline =
    `${pc.bold('rhpool')}  running ${status.totalRunning}/${status.totalMaxSlots} slots · queued ${status.totalQueued}` +
    (status.oldestQueuedSeconds ? ` · oldest wait ${status.oldestQueuedSeconds}s` : '') +
    (status.strategy ? ` · ${status.strategy}` : '')
  return [headline, accounts.toString(), tools.toString()].join('\n')
}

export function renderRows(rows: Array<Record<string, unknown>>, columns: string[]): string {
  const table = new Table({ head: columns, style: tableStyle() })
  for (const row of rows)
    table.push(
      columns.map((c) =>
        row[c] === null || row[c] === undefined ? '' : row[c] instanceof Date ? (row[c] as Date).toISOString() : String(row[c])
      )
    )
  return table.toString()
}
