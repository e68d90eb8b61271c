// Writes the configured accounts to the database: names, slots, order and key
// fingerprints. Never the keys. It disables nothing: whether an account takes
// work is decided by which live dispatchers hold its key (presence.ts).
import type { AccountConfig } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import * as db from '../db/rhpool.ts'

export async function syncAccounts(sql: Sql, accounts: AccountConfig[]): Promise<void> {
  await db.syncAccounts(
    sql,
    accounts.map((a) => ({ name: a.name, slots: a.slots, position: a.position, fingerprint: a.fingerprint }))
  )
}
