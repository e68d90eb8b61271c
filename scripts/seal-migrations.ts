// Development tool: rewrites the `--! Previous` / `--! Hash` headers of the
// committed migrations after one was edited before release, using
// graphile-migrate's own hash. Never run it on a migration that has shipped.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { projectRoot } from '../src/db/migrate.ts'

const require = createRequire(import.meta.url)
const { calculateHash } = require('graphile-migrate/dist/hash') as { calculateHash: (body: string, previous: string | null) => string }

const folder = join(projectRoot, 'db', 'migrations', 'committed')
let previous: string | null = null
for (const name of readdirSync(folder)
  .filter((f) => f.endsWith('.sql'))
  .sort()) {
  const text = readFileSync(join(folder, name), 'utf8')
  const body = text.replace(/^(--! [A-Z][^\n]*\n)+\n/, '')
  const hash = calculateHash(body, previous)
  writeFileSync(join(folder, name), `--! Previous: ${previous ?? '-'}\n--! Hash: ${hash}\n\n${body}`)
  console.log(`${name}: ${hash}`)
  previous = hash
}
