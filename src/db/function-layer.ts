// Applies rhpool's function layer (db/functions then db/cron, in name order)
// in ONE transaction: all of it or nothing.
//
//   1. Drop rhpool's functions and views that nothing outside the layer
//      depends on, so a changed return type, argument list or view column
//      list is simply created anew (and their grants are the files' alone).
//      Trigger functions stay: their signature (`returns trigger`, no
//      arguments) cannot change, and dropping them would drop rhpool's
//      triggers on the product's job tables, whose ACCESS EXCLUSIVE lock
//      would block even reads of those tables until commit. What the product
//      (or a migration) depends on stays too, redefined in place by
//      `create or replace`.
//   2. Run the files.
//   3. Whatever rhpool function or view the files did not (re)define is a
//      leftover of an older release: dropped with what only it needs (an old
//      trigger of rhpool's), unless something outside the layer, or
//      something the files just defined, still depends on it; then the whole
//      layer is refused, naming both, rather than cascading into the
//      product's objects.
//   The release is recorded (rhpool.function_layer) in the same transaction.
import { readFileSync } from 'node:fs'
import type postgres from 'postgres'
import { dropStatement, layerObjects, markKept, stillThere, type LayerObject } from './layer-objects.ts'
import { newestMigration, type Release } from './release.ts'

export interface LayerFile {
  path: string
  /** How errors name it, e.g. `db/functions/150-claim-account-slot.sql`. */
  name: string
}

export interface LayerResult {
  /** What an older release defined and this one does not: gone. */
  dropped: string[]
  /** Kept across the layer (not dropped first) because something outside it depends on them. */
  kept: string[]
}

/** The layer could not be applied; nothing of it was. */
export class FunctionLayerError extends Error {
  override name = 'FunctionLayerError'
}

interface PgError {
  code?: string
  message: string
  position?: string
  where?: string
  detail?: string
  hint?: string
}

// Errors Postgres gives when `create or replace` cannot redefine an object in
// place: a function's return type, parameter names or defaults; a view's columns.
const cannotRedefine = new Set(['42P13', '42P16'])

export async function applyFunctionLayer(sql: postgres.Sql, files: LayerFile[], release: Release): Promise<LayerResult> {
  const texts = files.map((file) => ({ ...file, text: readFileSync(file.path, 'utf8') }))
  // The layer takes locks on rhpool's and the job tables as it goes; a
  // dispatcher's transaction may take them in another order. On a deadlock
  // the layer is the one rolled back whole, and simply runs again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await sql.begin((tx) => applyOnce(tx, texts, release))
    } catch (error) {
      if ((error as PgError).code !== '40P01' || attempt === 3) throw error
    }
  }
}

async function applyOnce(tx: postgres.TransactionSql, files: Array<LayerFile & { text: string }>, release: Release): Promise<LayerResult> {
  const before = await layerObjects(tx)
  const kept = before.filter((o) => o.heldBy.length > 0)
  const keep = (o: LayerObject) => o.triggerFunction || o.heldBy.length > 0
  for (const object of before.filter((o) => !keep(o))) {
    if (await stillThere(tx, object)) await tx.unsafe(dropStatement(object))
  }
  for (const object of before.filter(keep)) await markKept(tx, object)

  for (const file of files) {
    try {
      await tx.unsafe(file.text)
    } catch (error) {
      if ((error as PgError).code === '40P01') throw error
      throw new FunctionLayerError(describeFailure(file, error as PgError, kept))
    }
  }

  // Recorded in a savepoint: its row's xmin is this transaction's newest xid,
  // the upper end of the xids that count as "written here".
  const [recorded] = await tx.savepoint((sp) => sp`
    insert into rhpool.function_layer (release, last_migration) values (${release.version}, ${newestMigration(release)})
    on conflict (id) do update set release = excluded.release, last_migration = excluded.last_migration, applied_at = now()
    returning xmin::text as xid`)

  const after = await layerObjects(tx, recorded!.xid as string)
  const leftovers = after.filter((o) => !o.written)
  const refusals: string[] = []
  for (const object of leftovers) {
    if (object.heldBy.length > 0) {
      refusals.push(`${object.identity} is no longer defined by this release, but ${object.heldBy.join(', ')} still depends on it ` +
        '(rhpool never drops objects that are not its own: change or drop those first)')
    } else if (object.neededBy.length > 0) {
      refusals.push(`${object.identity} is not defined by this release's files, yet ${object.neededBy.join(', ')}, which they define, depends on it`)
    }
  }
  if (refusals.length > 0) throw new FunctionLayerError(`the function layer of rhpool ${release.version} was not applied (nothing was changed): ${refusals.join('; ')}`)
  for (const object of leftovers) {
    if (await stillThere(tx, object)) await tx.unsafe(dropStatement(object))
  }

  // Gone: dropped before the files and not defined again, or a leftover dropped now.
  const defined = new Set(after.filter((o) => o.written).map((o) => o.identity))
  const dropped = before.map((o) => o.identity).filter((identity) => !defined.has(identity))
  return { dropped, kept: kept.map((o) => o.identity) }
}

function describeFailure(file: LayerFile & { text: string }, error: PgError, kept: LayerObject[]): string {
  const line = error.position ? file.text.slice(0, Number(error.position) - 1).split('\n').length : null
  const parts = [`${file.name}${line ? `, line ${line}` : ''}: ${error.message}`]
  if (error.detail) parts.push(`detail: ${error.detail}`)
  if (error.hint) parts.push(`hint: ${error.hint}`)
  if (error.where) parts.push(`where: ${error.where.replace(/\n/g, ' / ')}`)
  if (error.code && cannotRedefine.has(error.code) && kept.length > 0) {
    // Postgres names the object in its message or hint when it can; otherwise every kept object is a suspect.
    const said = `${error.message} ${error.hint ?? ''}`
    const named = kept.filter((o) => said.includes(o.identity))
    parts.push((named.length > 0 ? named : kept).map((o) => `${o.identity} was not dropped and recreated because ${o.heldBy.join(', ')} depends on it`).join('; '))
  }
  return `the function layer was not applied (nothing was changed): ${parts.join('; ')}`
}
