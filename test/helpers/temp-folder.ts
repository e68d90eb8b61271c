// A test's own folder under the system's temporary directory, removed when the
// test ends. tap runs a test's teardowns last registered first, so a cluster
// started in the folder afterwards is destroyed before the folder goes.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestLike } from './chaos-parts.ts'

/**
 * A fresh folder named `<prefix><random>`. `readableByOthers`: mode 0755, for a
 * PostgreSQL data directory inside it (the server runs as another user).
 */
export function tempFolder(t: TestLike, prefix: string, { readableByOthers = false } = {}): string {
  const folder = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(folder, { recursive: true, force: true }))
  if (readableByOthers) chmodSync(folder, 0o755)
  return folder
}
