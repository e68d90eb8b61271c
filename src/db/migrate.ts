// Applies rhpool's schema to a database.
//
// Committed migrations (db/migrations/committed) change tables and data, once
// each, with graphile-migrate. Functions, triggers, views and cron schedules
// (db/functions, db/cron) are the function layer: `create or replace` files
// applied after every migrate, in file name order, in one transaction
// (function-layer.ts): a fresh database and an upgraded one end up identical,
// a function is read in one place, its own file, and one that a release no
// longer defines is gone. Before anything is written, a database that a newer
// release migrated is refused (database-version.ts).
import { readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { migrate as graphileMigrate } from 'graphile-migrate'
import postgres from 'postgres'
import { refuseNewerDatabase } from './database-version.ts'
import { applyFunctionLayer, type LayerFile, type LayerResult } from './function-layer.ts'
import { defaultDbFolder, thisRelease } from './release.ts'
import { errorCodeTable } from '../runninghub/classify.ts'

export { projectRoot } from './release.ts'

export interface MigrateOptions {
  /** A folder laid out like db/ (migrations/committed, functions, cron). For tests: a copy with a file changed. */
  dbFolder?: string
  /** Where rhpool says what it did (graphile-migrate prints its own lines to the console). */
  log?: (line: string) => void
}

/** The db/functions then db/cron files, in the order they are applied. */
export function layerFiles(dbFolder = defaultDbFolder): LayerFile[] {
  return ['functions', 'cron'].flatMap((folder) => {
    const dir = join(dbFolder, folder)
    return readdirSync(dir)
      .filter((name) => name.endsWith('.sql'))
      .sort()
      .map((name) => ({ path: join(dir, name), name: relative(dirname(dbFolder), join(dir, name)) }))
  })
}

/** Serialises rhpool migrations on one database (its own key, beside graphile-migrate's try-lock). */
const migrateLockKey = 0x7268_706f // 'rhpo'

/**
 * Several instances may migrate at the same moment (a rolling deploy, two
 * `rhpool migrate` at once): each waits for the one before it on a session
 * advisory lock, then finds nothing left to do. graphile-migrate's own lock is
 * a try-lock that fails at once, so without this one the second would die.
 *
 * Throws NewerDatabaseError (exit code 57) when a newer release migrated the
 * database, and FunctionLayerError when the layer cannot be applied; in both
 * cases the function layer is as it was.
 */
export async function migrate(connectionString: string, options: MigrateOptions = {}): Promise<LayerResult> {
  const dbFolder = options.dbFolder ?? defaultDbFolder
  const log = options.log ?? ((line: string) => console.log(line))
  const release = thisRelease(dbFolder)
  const sql = postgres(connectionString, { max: 1, onnotice: () => {}, connection: { application_name: 'rhpool migrate' } })
  try {
    await sql`select pg_advisory_lock(${migrateLockKey})`
    // Under the lock: no other rhpool migrate can move the database on between this check and the layer.
    await refuseNewerDatabase(sql, release, 'migrate')
    await graphileMigrate({ connectionString, migrationsFolder: join(dbFolder, 'migrations') }, false, false)
    const result = await applyFunctionLayer(sql, layerFiles(dbFolder), release)
    for (const name of result.dropped) log(`rhpool migrate: dropped ${name}, which this release no longer defines`)
    // What each error code means and what users are told: classify.ts's table, written whole.
    await sql`select rhpool.load_error_codes(${sql.json(errorCodeTable() as never)})`
    log(`rhpool migrate: function layer of rhpool ${release.version} applied`)
    return result
  } finally {
    // Ending the session releases the lock, also when a migration failed.
    await sql.end({ timeout: 5 })
  }
}
