// EXPLAIN (ANALYZE, BUFFERS) of one real claim. EXPLAIN on the function call
// itself shows only "Function Scan", so the plans of the statements inside
// claim_account_slot() (and of the triggers they fire: the runs_slot_cap check
// per run that takes a slot, the job tables' guards, the foreign-key checks)
// are captured with auto_explain's nested-statement logging, sent to this
// client as LOG notices.
import postgres from 'postgres'
import type { Sql } from './bench-database.ts'
import { claimBatch, freeAndRefill, type ClaimedJob } from './claim-loop.ts'

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Actual Rows'?: number
  'Actual Loops'?: number
  'Rows Removed by Filter'?: number
  'Shared Hit Blocks'?: number
  'Shared Read Blocks'?: number
  Plans?: PlanNode[]
}

interface LoggedPlan {
  durationMs: number
  queryText: string
  plan: PlanNode
}

export interface QueueScan {
  /** Rows the scan of the queued runs produced (the runs_queue index): the claim's whole read of the queue. */
  rowsRead: number
  rowsRemovedByFilter: number
  sharedBlocks: number
  plan: string
}

export interface ClaimPlanReport {
  freeSlots: number
  claimed: number
  /** Total time of the top-level statement as auto_explain measured it (with instrumentation). */
  claimMs: number
  queueScan: QueueScan | undefined
  /** Every statement run inside the claim, grouped by text: trigger statements run once per claimed job. */
  statements: StatementGroup[]
}

export interface StatementGroup {
  text: string
  calls: number
  /** Includes the time of the triggers the statement fired (they are nested inside it). */
  totalMs: number
  /** Table rows the statement's scans looked at, kept or filtered out: what shows a missed index. */
  rowsScanned: number
  scans: string
}

function parseAutoExplain(message: string): LoggedPlan | undefined {
  const duration = /^duration: ([0-9.]+) ms/.exec(message)
  const json = message.indexOf('{')
  if (!duration || json < 0) return undefined
  const body = JSON.parse(message.slice(json)) as { 'Query Text': string; Plan: PlanNode }
  return { durationMs: Number(duration[1]), queryText: body['Query Text'], plan: body.Plan }
}

function* walk(node: PlanNode): Generator<PlanNode> {
  yield node
  for (const child of node.Plans ?? []) yield* walk(child)
}

function describeNode(node: PlanNode): string {
  const target = node['Index Name']
    ? ` using ${node['Index Name']} on ${node['Relation Name']}`
    : node['Relation Name']
      ? ` on ${node['Relation Name']}`
      : ''
  const filtered = node['Rows Removed by Filter'] ? `, removed by filter=${node['Rows Removed by Filter']}` : ''
  const blocks = `shared hit=${node['Shared Hit Blocks'] ?? 0} read=${node['Shared Read Blocks'] ?? 0}`
  return `${node['Node Type']}${target} (actual rows=${node['Actual Rows']} loops=${node['Actual Loops']}${filtered}; buffers ${blocks})`
}

function renderTree(node: PlanNode, depth = 0): string[] {
  return [
    `${'  '.repeat(depth)}${depth ? '-> ' : ''}${describeNode(node)}`,
    ...(node.Plans ?? []).flatMap((child) => renderTree(child, depth + 1)),
  ]
}

const oneLine = (text: string, width = 110): string => {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat
}

// The claim's own read of the queue: the scan of rhpool.runs in the statement
// that picks the candidates (`with candidates as (select … from rhpool.runs r
// where r.status = 'queued' …`), not the other reads of rhpool.runs (the free
// slots per account, the slot cap's count, the claim's update).
const isCandidateScan = (logged: LoggedPlan, node: PlanNode): boolean =>
  node['Relation Name'] === 'runs' &&
  /Scan/.test(node['Node Type']) &&
  /^\s*(select|with)\b/i.test(logged.queryText) &&
  /status\s*=\s*'queued'/i.test(logged.queryText)

function findQueueScan(plans: LoggedPlan[]): QueueScan | undefined {
  for (const logged of plans) {
    const scan = [...walk(logged.plan)].find((node) => isCandidateScan(logged, node))
    if (scan) {
      return {
        rowsRead: scan['Actual Rows'] ?? Number.NaN,
        rowsRemovedByFilter: scan['Rows Removed by Filter'] ?? 0,
        sharedBlocks: (scan['Shared Hit Blocks'] ?? 0) + (scan['Shared Read Blocks'] ?? 0),
        plan: [`${oneLine(logged.queryText, 200)}`, ...renderTree(logged.plan)].join('\n'),
      }
    }
  }
  return undefined
}

const relationScans = (plan: PlanNode): PlanNode[] =>
  [...walk(plan)].filter((node) => node['Relation Name'] !== undefined && /Scan/.test(node['Node Type']))

// EXPLAIN reports rows per loop; the totals are what was really read.
const rowsScannedBy = (node: PlanNode): number =>
  ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)) * (node['Actual Loops'] ?? 1)

const scanLabel = (node: PlanNode): string => `${node['Node Type']} ${node['Index Name'] ?? node['Relation Name']}`

function groupStatements(plans: LoggedPlan[]): StatementGroup[] {
  const groups = new Map<string, StatementGroup>()
  for (const logged of plans) {
    const text = oneLine(logged.queryText, 80)
    const group = groups.get(text) ?? { text, calls: 0, totalMs: 0, rowsScanned: 0, scans: '' }
    const scans = relationScans(logged.plan)
    group.calls++
    group.totalMs += logged.durationMs
    group.rowsScanned += scans.reduce((sum, node) => sum + rowsScannedBy(node), 0)
    group.scans = [...new Set(scans.map(scanLabel))].join(', ')
    groups.set(text, group)
  }
  return [...groups.values()].sort((a, b) => b.totalMs - a.totalMs)
}

/**
 * Claims `freeSlots` jobs once with auto_explain on, on a connection that has
 * already claimed a few times (so plpgsql runs its cached plans, as a
 * long-lived dispatcher connection does; fewer when those claims are slow),
 * then frees them again.
 */
export async function explainOneClaim(url: string, freeSlots: number, warmupBudgetSeconds = 30): Promise<ClaimPlanReport> {
  const logged: LoggedPlan[] = []
  const sql: Sql = postgres(url, {
    max: 1,
    onnotice: (notice) => {
      const plan = notice.severity === 'LOG' && notice.message ? parseAutoExplain(notice.message) : undefined
      if (plan) logged.push(plan)
    },
  })
  try {
    await sql`load 'auto_explain'`
    await sql.unsafe(`set auto_explain.log_analyze = on; set auto_explain.log_buffers = on; set auto_explain.log_timing = on;
      set auto_explain.log_nested_statements = on; set auto_explain.log_format = json; set auto_explain.log_min_duration = -1`)
    const warmupStarted = performance.now()
    for (let i = 0; i < 8 && performance.now() - warmupStarted < warmupBudgetSeconds * 1000; i++) {
      await freeAndRefill(sql, await claimBatch(sql, freeSlots))
    }

    await sql.unsafe(`set auto_explain.log_min_duration = 0; set client_min_messages = log`)
    let claimed: ClaimedJob[]
    try {
      claimed = await claimBatch(sql, freeSlots)
    } finally {
      await sql.unsafe(`set client_min_messages = notice; set auto_explain.log_min_duration = -1`)
    }
    await freeAndRefill(sql, claimed)

    const topLevel = logged.find((plan) => plan.queryText.includes('claim_account_slot') && plan.plan['Node Type'] === 'Function Scan')
    const nested = logged.filter((plan) => plan !== topLevel && !/^\s*set /i.test(plan.queryText))
    return {
      freeSlots,
      claimed: claimed.length,
      claimMs: topLevel?.durationMs ?? Number.NaN,
      queueScan: findQueueScan(nested),
      statements: groupStatements(nested),
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}
