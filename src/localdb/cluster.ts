// A throwaway PostgreSQL cluster for tests, benchmarks and the demo.
//
// Postgres refuses to run as root, so when this process is root every server
// binary runs as the `postgres` system user (via runuser) and the data folder is
// handed to that user. The cluster listens on 127.0.0.1 only, with pg_cron
// preloaded so the pg_cron path is exercised exactly as in production.
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, chownSync, rmSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface ClusterOptions {
  /** Where the cluster lives; created (initdb) when it holds no cluster yet. */
  dataDir: string
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number
  /** The database pg_cron runs its jobs in (pg_cron serves exactly one). */
  cronDatabase?: string
  /** Trade durability for speed: right for tests, wrong for anything kept. */
  fast?: boolean
  /** Libraries loaded beside pg_cron (e.g. pg_stat_statements, auto_explain for a profile). */
  preloadLibraries?: string[]
  /** More server settings, as `name=value`. */
  settings?: string[]
}

export interface Cluster {
  port: number
  dataDir: string
  /** Connection string for a database of this cluster (as superuser `postgres`). */
  url(database?: string): string
  createDatabase(name: string, template?: string): Promise<string>
  /** Fast shutdown; the cluster can be started again with start(). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  start(): Promise<void>
  /** Stops the server and deletes its data folder. */
  destroy(): Promise<void>
}

export function postgresBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN
  for (const version of ['17', '16', '15']) {
    const dir = `/usr/lib/postgresql/${version}/bin`
    if (existsSync(join(dir, 'postgres'))) return dir
  }
  const found = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  if (found.status === 0 && found.stdout.trim()) return found.stdout.trim()
  throw new Error(
    'PostgreSQL server binaries not found: install postgresql-15 (apt-get install postgresql-15 postgresql-15-cron) or set PG_BIN to the folder holding initdb and pg_ctl'
  )
}

export const runningAsRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0

/** Whether the `postgres` system user can enter this folder (every parent must let it through). */
export function postgresUserCanReach(folder: string): boolean {
  return spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', folder], { stdio: 'ignore' }).status === 0
}

async function runPgBinary(binary: string, args: string[]): Promise<void> {
  const path = join(postgresBinDir(), binary)
  const [command, commandArgs] = runningAsRoot() ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args]
  try {
    await run(command, commandArgs, { cwd: '/', maxBuffer: 16 * 1024 * 1024 })
  } catch (error) {
    const failure = error as { stderr?: string; stdout?: string; message: string }
    throw new Error(`${binary} ${args.join(' ')} failed: ${failure.stderr || failure.stdout || failure.message}`)
  }
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!
}

/**
 * Ports free on 127.0.0.1 right now, all different: each is held open until every one is chosen (two ports
 * asked for one after the other can be the same one, freed by the first and handed out again).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer())
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.unref()
            server.on('error', reject)
            server.listen(0, '127.0.0.1', () => {
              const address = server.address()
              resolve(typeof address === 'object' && address ? address.port : 0)
            })
          })
      )
    )
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => (server.listening ? server.close(resolve) : resolve(null)))))
  }
}

function handToPostgresUser(path: string): void {
  if (!runningAsRoot()) return
  const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (ids.status !== 0) throw new Error('running as root but there is no `postgres` system user to run PostgreSQL as')
  chownSync(path, Number(ids.stdout.trim()), Number(gids.stdout.trim()))
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const { dataDir } = options
  const port = options.port ?? (await freePort())
  const cronDatabase = options.cronDatabase ?? 'postgres'
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    // Parents readable by the postgres user (it must reach the folder); the folder itself private.
    mkdirSync(dirname(dataDir), { recursive: true })
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    if (runningAsRoot() && !postgresUserCanReach(dirname(dataDir))) {
      throw new Error(
        `PostgreSQL runs as the postgres user, which cannot enter ${dirname(dataDir)} (a parent folder is private, e.g. mode 0700): put the data in a folder it can reach (RHPOOL_DATA_DIR)`
      )
    }
    handToPostgresUser(dataDir)
    await runPgBinary('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'])
  }
  const settings = [
    `-p ${port}`,
    `-c listen_addresses=127.0.0.1`,
    `-c unix_socket_directories=${dataDir}`,
    `-c shared_preload_libraries=${['pg_cron', ...(options.preloadLibraries ?? [])].join(',')}`,
    `-c cron.database_name=${cronDatabase}`,
    `-c max_connections=200`,
    ...(options.fast ? ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'] : []),
    ...(options.settings ?? []).map((setting) => `-c ${setting}`),
  ].join(' ')
  const logFile = join(dataDir, 'server.log')

  const cluster: Cluster = {
    port,
    dataDir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name, template) {
      const { default: postgres } = await import('postgres')
      const sql = postgres(cluster.url(), { max: 1, onnotice: () => {} })
      try {
        await sql.unsafe(`create database "${name}"${template ? ` template "${template}"` : ''}`)
      } finally {
        await sql.end({ timeout: 5 })
      }
      return cluster.url(name)
    },
    async start() {
      try {
        await runPgBinary('pg_ctl', ['-D', dataDir, '-o', settings, '-l', logFile, '-w', '-t', '60', 'start'])
      } catch (error) {
        const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''
        throw new Error(`${(error as Error).message}\n${log}`)
      }
    },
    async stop(mode = 'fast') {
      await runPgBinary('pg_ctl', ['-D', dataDir, '-m', mode, '-w', '-t', '60', 'stop'])
    },
    async destroy() {
      try {
        await cluster.stop('immediate')
      } catch {
        // already stopped
      }
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
  await cluster.start()
  return cluster
}
