// Dispatcher presence and the accounts it declares
// (120-dispatcher-presence.sql, 130-accounts.sql, 010-settings.sql).
import type { Sql } from './connect.ts'
import { json, rows, run } from './rhpool-query.ts'

export type KeyStateName = 'held' | 'other_key' | 'no_account'

/** dispatcher_heartbeat's row: one per declared key. */
export interface KeyState {
  account: string
  state: KeyStateName
  key_fingerprint: string
  recorded_fingerprint: string | null
  recorded_holders: number
  declared_slots: number
  recorded_slots: number | null
}

export interface DeclaredKey {
  name: string
  fingerprint: string
  slots: number
}

export interface SyncedAccount {
  name: string
  slots: number
  position: number
  fingerprint: string
}

/** Runs work in one transaction under the admission lock (rhpool.lock_admission). */
export function underAdmissionLock<T>(sql: Sql, work: (tx: Sql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select rhpool.lock_admission()`
    return await work(tx as unknown as Sql)
  }) as Promise<T>
}

/** Declares this holder's keys; the state of each. */
export function dispatcherHeartbeat(sql: Sql, holder: string, keys: DeclaredKey[], staleSeconds: number): Promise<KeyState[]> {
  return rows(sql`select * from rhpool.dispatcher_heartbeat(${holder}, ${json(sql, keys)}, ${staleSeconds})`)
}

/** A clean stop: this holder holds nothing any more. */
export function dispatcherLeave(sql: Sql, holder: string): Promise<void> {
  return run(sql`select rhpool.dispatcher_leave(${holder})`)
}

/** Writes the accounts' names, slots, order and key fingerprints (never the keys). */
export function syncAccounts(sql: Sql, accounts: SyncedAccount[]): Promise<void> {
  return run(sql`select * from rhpool.sync_accounts(${json(sql, accounts)})`)
}

/** The key fingerprint recorded on each named account (null when none is); unknown names are absent. */
export async function recordedFingerprints(sql: Sql, names: string[]): Promise<Map<string, string | null>> {
  const found = await rows<{ name: string; key_fingerprint: string | null }>(sql`select name, key_fingerprint from rhpool.accounts where name in ${sql(names)}`)
  return new Map(found.map((r) => [String(r.name), r.key_fingerprint]))
}
