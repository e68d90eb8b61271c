// Refuses a database that is ahead of this release, before anything is
// written: an older rhpool must not put its functions over a newer schema,
// nor run its dispatcher against one.
//
// graphile-migrate does not guard this. It reads only the newest filename in
// graphile_migrate.migrations and runs the local migrations after it; a
// database that has migrations this release lacks is "Already up to date",
// and the function layer would then be re-applied over it, silently. Nor does
// it compare the hashes of migrations both sides have.
import type postgres from 'postgres'
import { compareVersions, newestMigration, type Release } from './release.ts'

/** The exit code of `rhpool migrate` and `rhpool start` for such a database (graphile-worker's too). */
export const newerDatabaseExitCode = 57

export class NewerDatabaseError extends Error {
  override name = 'NewerDatabaseError'
  readonly exitCode = newerDatabaseExitCode
}

export interface RecordedState {
  /** graphile_migrate.migrations, oldest first (empty before the first migrate). */
  migrations: Array<{ filename: string; hash: string }>
  /** rhpool.function_layer's row, when a release that records it applied the layer. */
  layer: { release: string; last_migration: string; applied_at: Date } | null
}

export async function recordedState(sql: postgres.Sql | postgres.TransactionSql): Promise<RecordedState> {
  const [tables] = await sql`select to_regclass('graphile_migrate.migrations') is not null as migrations,
                                    to_regclass('rhpool.function_layer') is not null as layer`
  const migrations = tables!.migrations
    ? ((await sql`select filename, hash from graphile_migrate.migrations order by filename`) as unknown as RecordedState['migrations'])
    : []
  const [layer] = tables!.layer ? await sql`select release, last_migration, applied_at from rhpool.function_layer` : []
  return { migrations, layer: (layer as RecordedState['layer']) ?? null }
}

/** Why this release must not touch a database in this state, or null when it may. */
export function whyNewer(state: RecordedState, release: Release): string | null {
  const ours = `this release (rhpool ${release.version}, migrations up to ${newestMigration(release)})`
  const local = new Map(release.migrations.map((m) => [m.filename, m]))
  for (const applied of state.migrations) {
    const mine = local.get(applied.filename)
    if (!mine) {
      return `the database has committed migration ${applied.filename}, which ${ours} does not have: a newer release migrated it; run that release or a later one`
    }
    if (mine.hash !== applied.hash) {
      return `the database's committed migration ${applied.filename} has hash ${applied.hash}, but ${ours} has ${mine.realFilename} with hash ${mine.hash}: ` +
        'the database was migrated from another history (an unreleased branch?); migrate it with the release that made it, or start it afresh'
    }
  }
  if (state.layer) {
    const order = compareVersions(state.layer.release, release.version)
    const by = `rhpool ${state.layer.release} (migrations up to ${state.layer.last_migration}, at ${state.layer.applied_at.toISOString()})`
    if (order === null) return `the database's function layer was applied by ${by}, a version ${ours} cannot compare with its own`
    if (order > 0) return `the database's function layer was applied by ${by}, newer than ${ours}; run rhpool ${state.layer.release} or a later one`
  }
  return null
}

/** Throws NewerDatabaseError naming both sides when the database is ahead of this release. */
export async function refuseNewerDatabase(sql: postgres.Sql, release: Release, command: 'migrate' | 'start'): Promise<void> {
  const why = whyNewer(await recordedState(sql), release)
  if (why) {
    throw new NewerDatabaseError(`rhpool ${release.version} will not ${command === 'migrate' ? 'migrate' : 'start on'} this database: ${why}. ` +
      `Nothing was changed (exit code ${newerDatabaseExitCode}).`)
  }
}
