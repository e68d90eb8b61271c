// Applies rhpool's schema to a database with graphile-migrate.
//
// Committed migrations (db/migrations/committed) change tables and data, once
// each. Functions, triggers and cron schedules (db/functions, db/cron) are
// idempotent `create or replace` files re-applied after every migrate, in file
// name order: a fresh database and an upgraded one end up identical, and a
// function is read in one place, its own file.
import { readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { migrate as graphileMigrate } from 'graphile-migrate'
import postgres from 'postgres'
import { errorCodeTable } from '../runninghub/classify.ts'

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const migrationsFolder = join(projectRoot, 'db', 'migrations')

/** The db/functions then db/cron files, in the order they are applied. */
export function repeatableSqlFiles(): string[] {
  return ['functions', 'cron'].flatMap((folder) => {
    const dir = join(projectRoot, 'db', folder)
    return readdirSync(dir)
      .filter((name) => name.endsWith('.sql'))
      .sort()
      .map((name) => join(dir, name))
  })
}

/** Serialises rhpool migrations on one database (its own key, beside graphile-migrate's try-lock). */
const migrateLockKey = 0x7268_706f // 'rhpo'

/**
 * Several instances may migrate at the same moment (a rolling deploy, two
 * `rhpool migrate` at once): each waits for the one before it on a session
 * advisory lock, then finds nothing left to do. graphile-migrate's own lock is
 * a try-lock that fails at once, so without this one the second would die.
 */
export async function migrate(connectionString: string): Promise<void> {
  const lock = postgres(connectionString, { max: 1, onnotice: () => {}, connection: { application_name: 'rhpool migrate (lock)' } })
  try {
    await lock`select pg_advisory_lock(${migrateLockKey})`
    await applyMigrations(connectionString)
    // What each error code means and what users are told: classify.ts's table, written whole.
    await lock`select rhpool.load_error_codes(${lock.json(errorCodeTable() as never)})`
  } finally {
    // Ending the session releases the lock, also when a migration failed.
    await lock.end({ timeout: 5 })
  }
}

async function applyMigrations(connectionString: string): Promise<void> {
  await graphileMigrate(
    {
      connectionString,
      migrationsFolder,
      afterAllMigrations: repeatableSqlFiles().map((file) => ({ _: 'sql' as const, file: relative(migrationsFolder, file) })),
    },
    false,
    // Re-apply functions even when no migration was pending, so editing a
    // function file and running migrate is all a deploy takes.
    true
  )
}
