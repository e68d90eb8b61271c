// The benchmark database: rhpool's schema, the bench-only helpers
// (bench-schema.sql), a queue filled to a given depth and a given set of accounts.
import { readFileSync } from 'node:fs'
import postgres from 'postgres'
import { migrate } from '../../src/db/migrate.ts'

export type Sql = postgres.Sql

export function connect(url: string, maxConnections = 1): Sql {
  // Prepared statements (the default) are what a dispatcher uses too.
  return postgres(url, { max: maxConnections, onnotice: () => {} })
}

export async function prepareDatabase(url: string): Promise<void> {
  await migrate(url)
  const sql = connect(url)
  try {
    await sql.unsafe(readFileSync(new URL('./bench-schema.sql', import.meta.url), 'utf8'))
  } finally {
    await sql.end()
  }
}

/** Queued jobs: runs in status 'queued' (what the runs_queue index holds). */
export async function queueDepth(sql: Sql): Promise<number> {
  const [row] = await sql`select count(*)::int as depth from rhpool.runs where status = 'queued'`
  return row!.depth as number
}

/**
 * Adds queued jobs until `target` runs are queued. Chunks keep each
 * transaction modest; two loaders at once use both cores (the rows go through
 * rhpool's per-row triggers, which dominate the load time).
 */
export async function fillQueueTo(url: string, target: number, loaders = 2, chunk = 50_000): Promise<number> {
  const sql = connect(url, loaders)
  try {
    let missing = target - (await queueDepth(sql))
    const pending: Array<Promise<unknown>> = []
    const loadNextChunk = async (): Promise<void> => {
      while (missing > 0) {
        const size = Math.min(chunk, missing)
        missing -= size
        await sql`select bench.add_queued_jobs(${size})`
      }
    }
    for (let i = 0; i < loaders; i++) pending.push(loadNextChunk())
    await Promise.all(pending)
    // The fill's moves folded into the queue's counts (a dispatcher would within a second), then
    // fresh statistics and a visibility map, and the folded journal vacuumed, as a database in
    // steady state has. (Until its next vacuum, a journal that folded N moves at once costs reads
    // a scan of N dead rows: see bench/README.md.)
    await sql`select rhpool.fold_queue_journal()`
    await sql`vacuum analyze`
    return await queueDepth(sql)
  } finally {
    await sql.end()
  }
}

export const accountName = (n: number): string => `bench_${String(n).padStart(3, '0')}`

/**
 * Exactly `count` usable accounts of `slots` slots each: synced, and their keys
 * held by one stand-in dispatcher ('bench'), whose earlier accounts it no
 * longer holds (so they take no work). Every other account is disabled
 * (useOnly): since dispatcher presence (000015) an account left out of a sync
 * stays enabled, and a claim and a status read visit every enabled account.
 */
export async function useAccounts(sql: Sql, count: number, slots: number): Promise<void> {
  const accounts = Array.from({ length: count }, (_, i) => ({
    name: accountName(i + 1),
    slots,
    position: i + 1,
    fingerprint: `fp_${i + 1}`,
  }))
  const keys = accounts.map((a) => ({ name: a.name, fingerprint: a.fingerprint, slots: a.slots }))
  await sql.begin(async (tx) => {
    await tx`select count(*) from rhpool.dispatcher_heartbeat('bench', ${tx.json(keys)}, 86400)`
    await tx`select count(*) from rhpool.sync_accounts(${tx.json(accounts)})`
    await useOnly(
      tx as unknown as Sql,
      accounts.map((a) => a.name)
    )
  })
}

/** These accounts enabled, every other one disabled (by the operator: no sync enables it again). */
export async function useOnly(sql: Sql, names: string[]): Promise<void> {
  await sql`
    update rhpool.accounts
       set enabled = name = any(${names}::text[]),
           disabled_reason = case when name = any(${names}::text[]) then null else 'bench: not in this case' end,
           disabled_code = case when name = any(${names}::text[]) then null else 'operator' end
     where enabled is distinct from (name = any(${names}::text[]))`
}

/** Slots held: runs with an account (in flight; what the runs_in_flight index holds). */
export async function slotsHeld(sql: Sql): Promise<number> {
  const [row] = await sql`select count(*)::int as held from rhpool.runs where account is not null`
  return row!.held as number
}

/**
 * Applies SQL files over rhpool's schema in the throwaway database (never in
 * the repository): a way to measure a candidate change to db/functions before
 * it is committed.
 */
export async function applySqlFiles(url: string, files: string[]): Promise<void> {
  const sql = connect(url)
  try {
    for (const file of files) await sql.unsafe(readFileSync(file, 'utf8'))
  } finally {
    await sql.end()
  }
}

/**
 * From now on bench.add_queued_jobs() gives jobs RunningHub file names instead
 * of https input URLs: required before rhpool's dispatcher runs on the
 * database, so it never tries to download an input from another host.
 */
export async function useFileInputs(sql: Sql): Promise<void> {
  await sql`update bench.settings set value = 'files' where key = 'inputs'`
}

/** Adds `count` queued jobs (no vacuum): keeps a depth after a few jobs left the queue. */
export async function addQueuedJobs(sql: Sql, count: number): Promise<void> {
  if (count > 0) await sql`select bench.add_queued_jobs(${count})`
}
