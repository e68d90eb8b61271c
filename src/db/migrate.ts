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

export async function migrate(connectionString: string): Promise<void> {
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
