// What this checkout of rhpool is, as far as a database is concerned: its
// version (package.json) and the committed migrations it ships. Read from the
// files, so a test can point it at a copy of the db folder.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const defaultDbFolder = join(projectRoot, 'db')

export interface CommittedMigration {
  /** graphile-migrate's key in graphile_migrate.migrations: the number, e.g. `000014.sql`. */
  filename: string
  /** The file's real name, e.g. `000014-function-layer.sql`. */
  realFilename: string
  hash: string
}

export interface Release {
  version: string
  /** In order, oldest first. */
  migrations: CommittedMigration[]
}

// graphile-migrate's own pattern (dist/migration.js isMigrationFilename).
const migrationFilename = /^([0-9]{6,})(-[-_a-zA-Z0-9]*)?\.sql$/

/** This checkout's release; dbFolder: a folder laid out like db/ (for tests, a copy). */
export function thisRelease(dbFolder = defaultDbFolder): Release {
  const { version } = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }
  const folder = join(dbFolder, 'migrations', 'committed')
  const migrations = readdirSync(folder)
    .map((name) => migrationFilename.exec(name))
    .filter((match): match is RegExpExecArray => match !== null)
    .map(([realFilename, number]) => {
      const hash = /^--! Hash: (\S+)$/m.exec(readFileSync(join(folder, realFilename!), 'utf8'))?.[1]
      if (!hash) throw new Error(`committed migration ${realFilename} has no "--! Hash:" header`)
      return { filename: `${number}.sql`, realFilename: realFilename!, hash }
    })
    .sort((a, b) => a.filename.localeCompare(b.filename, 'en'))
  return { version, migrations }
}

export const newestMigration = (release: Release): string => release.migrations.at(-1)?.realFilename ?? 'none'

const semver = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

/**
 * Orders two release versions as semver does (1.2.0 < 1.10.0, 1.0.0-rc.1 <
 * 1.0.0); null when either is not a version.
 */
export function compareVersions(a: string, b: string): number | null {
  const x = semver.exec(a)
  const y = semver.exec(b)
  if (!x || !y) return null
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i]) - Number(y[i])
    if (d !== 0) return Math.sign(d)
  }
  // A pre-release comes before its release; pre-release fields compare one by one.
  if (x[4] === undefined || y[4] === undefined) return x[4] === y[4] ? 0 : x[4] === undefined ? 1 : -1
  const xs = x[4].split('.')
  const ys = y[4].split('.')
  for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
    if (xs[i] === undefined) return -1
    if (ys[i] === undefined) return 1
    const xn = /^\d+$/.test(xs[i]!)
    const yn = /^\d+$/.test(ys[i]!)
    if (xn && yn && Number(xs[i]) !== Number(ys[i])) return Math.sign(Number(xs[i]) - Number(ys[i]))
    if (xn !== yn) return xn ? -1 : 1
    if (!xn && xs[i] !== ys[i]) return xs[i]! < ys[i]! ? -1 : 1
  }
  return 0
}
