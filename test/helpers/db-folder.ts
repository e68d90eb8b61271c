// Another release's db/ folder, made from this one: a copy with some files
// written, changed or removed, for `migrate(url, { dbFolder })`. Removed at
// the end of the test.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectRoot } from '../../src/db/migrate.ts'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Paths are relative to db/ (`functions/995-x.sql`); a string is the new text, a function edits the old, null removes the file. */
export type FolderEdits = Record<string, string | ((text: string) => string) | null>

export function dbFolderCopy(t: Teardown, edits: FolderEdits): string {
  const root = mkdtempSync(join(tmpdir(), 'rhpool-db-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const folder = join(root, 'db')
  cpSync(join(projectRoot, 'db'), folder, { recursive: true })
  for (const [path, edit] of Object.entries(edits)) {
    const file = join(folder, path)
    if (edit === null) rmSync(file)
    else writeFileSync(file, typeof edit === 'string' ? edit : edit(readFileSync(file, 'utf8')))
  }
  return folder
}
