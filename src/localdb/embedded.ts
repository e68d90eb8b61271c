// The embedded default database: when DATABASE_URL is not set, rhpool runs
// its own PostgreSQL under the project's data folder (.data/postgres, or
// /var/lib/rhpool/<clone> where the server's user cannot reach the project, or
// RHPOOL_DATA_DIR), with pg_cron loaded and serving the `rhpool` database, so
// the demo exercises the same pg_cron path as production.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { basename, join } from 'node:path'
import postgres from 'postgres'
import { projectRoot } from '../db/migrate.ts'
import { postgresUserCanReach, runningAsRoot, startCluster, type Cluster } from './cluster.ts'

export const embeddedDatabase = 'rhpool'

export function embeddedSettings(env: NodeJS.ProcessEnv = process.env): { dataDir: string; port: number } {
  const port = Number(env.RHPOOL_EMBEDDED_PORT ?? 54329)
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`RHPOOL_EMBEDDED_PORT must be a TCP port, got ${JSON.stringify(env.RHPOOL_EMBEDDED_PORT)}`)
  return { dataDir: env.RHPOOL_DATA_DIR?.trim() || defaultDataDir(), port }
}

/**
 * The project's `.data/postgres`, where the PostgreSQL server can reach it. As root the
 * server runs as the `postgres` user (it refuses root), which cannot enter a clone under a
 * private folder such as root's home (mode 0700): there the data lives under
 * /var/lib/rhpool instead, in a folder named after the clone, so each clone keeps its own
 * and every run of the same clone finds it again.
 */
export function defaultDataDir(root: string = projectRoot): string {
  const inProject = join(root, '.data', 'postgres')
  if (!runningAsRoot() || postgresUserCanReach(root)) return inProject
  const tag = createHash('sha256').update(root).digest('hex').slice(0, 10)
  return join('/var/lib/rhpool', `${basename(root).replace(/[^A-Za-z0-9._-]/g, '_')}-${tag}`, 'postgres')
}
export const embeddedUrl = (port: number): string => `postgres://postgres@127.0.0.1:${port}/${embeddedDatabase}`

async function answers(port: number): Promise<boolean> {
  const sql = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, connect_timeout: 2, onnotice: () => {} })
  try {
    await sql`select 1`
    return true
  } catch {
    return false
  } finally {
    await sql.end({ timeout: 1 })
  }
}

export interface EmbeddedDatabase {
  url: string
  /** Where its data lives. */
  dataDir: string
  /** True when this process started the server (and so stops it). */
  owned: boolean
  stop(): Promise<void>
}

/** Starts the embedded server (or joins one already running) and makes sure the `rhpool` database exists. */
export async function startEmbeddedDatabase(env: NodeJS.ProcessEnv = process.env): Promise<EmbeddedDatabase> {
  const { dataDir, port } = embeddedSettings(env)
  let cluster: Cluster | null = null
  if (!(await answers(port))) {
    if (existsSync(join(dataDir, 'postmaster.pid'))) {
      throw new Error(
        `${dataDir} has a postmaster.pid but nothing answers on port ${port}: another server may be starting, or a crashed one left it (remove the file if no postgres process uses ${dataDir})`
      )
    }
    cluster = await startCluster({ dataDir, port, cronDatabase: embeddedDatabase })
  }
  const admin = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} })
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${embeddedDatabase}`
    if (!exists) await admin.unsafe(`create database ${embeddedDatabase}`)
  } finally {
    await admin.end({ timeout: 5 })
  }
  return {
    url: embeddedUrl(port),
    dataDir,
    owned: cluster !== null,
    async stop() {
      await cluster?.stop('fast')
    },
  }
}

/** The embedded server's URL when it is running (for `rhpool status` beside a running demo). */
export async function runningEmbeddedUrl(env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  const { port } = embeddedSettings(env)
  return (await answers(port)) ? embeddedUrl(port) : null
}
