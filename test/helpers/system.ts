// A whole rhpool against real parts: a fresh database in the test cluster, the
// RunningHub simulator over real HTTP, an input-file server, and rhpool itself
// in-process (startSystem) or as separate processes (spawnRhpool) for crash tests.
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import { loadConfig, type Config } from '../../src/config/index.ts'
import { projectRoot } from '../../src/db/migrate.ts'
import { freePorts } from '../../src/localdb/cluster.ts'
import { createLogger } from '../../src/log.ts'
import { startService, type Service } from '../../src/service.ts'
import { startSimulator, type Simulator, type SimulatorConfig } from '../../simulator/index.ts'
import { freshDatabase, type TestDatabase } from './db.ts'

interface TestLike {
  teardown(fn: () => unknown): void
}

export const testSecret = 'test-webhook-secret-0123456789abcdef-0123456789'
export const testKeys = ['rh-key-primary-aaaa1111', 'rh-key-second-bbbb2222', 'rh-key-third-cccc3333', 'rh-key-fourth-dddd4444']

/** Serves input files: any path gives bytes; /missing 404s; /slow/<ms>/… waits first; /broken 500s. */
export async function startFileServer(t: TestLike): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = []
  const server: Server = createServer((request, response) => {
    const path = request.url ?? '/'
    requests.push(path)
    if (path.startsWith('/missing')) return void response.writeHead(404).end('not found')
    if (path.startsWith('/broken')) return void response.writeHead(500).end('oops')
    const slow = /^\/slow\/(\d+)\//.exec(path)
    const send = () =>
      response.writeHead(200, { 'content-type': path.endsWith('.mp4') ? 'video/mp4' : 'image/png' }).end(Buffer.from(`bytes of ${path}`))
    if (slow) setTimeout(send, Number(slow[1]))
    else send()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  )
  return { url: `http://127.0.0.1:${port}`, requests }
}

export interface SystemOptions {
  /** rhpool slots per account; the simulator's own limit is `simConcurrency` (default: the same). */
  slots?: number[]
  simConcurrency?: number
  sim?: Partial<SimulatorConfig>
  /** Simulator start options beside its config (e.g. taskIdSeed). */
  simOptions?: { taskIdSeed?: number; seed?: number }
  env?: Record<string, string>
  /** Start rhpool in this process (default true). */
  inProcess?: boolean
  /** rhpool.settings rows to write before rhpool starts (lease_seconds, strategy, ...). */
  settings?: Record<string, string>
}

export interface System {
  db: TestDatabase
  sim: Simulator
  env: Record<string, string>
  config: Config
  service: Service | null
  files: { url: string; requests: string[] }
  logs: string[]
  port: number
  /** The public listener: the webhook route and /healthz. */
  baseUrl: string
  /** The operator's listener: status, jobs, dashboard, readiness, metrics. */
  adminUrl: string
  waitFor<T>(what: string, check: () => Promise<T | null | undefined | false>, timeoutMs?: number): Promise<T>
  jobs(): Promise<Array<Record<string, unknown>>>
}

export async function startSystem(t: TestLike, options: SystemOptions = {}): Promise<System> {
  const slots = options.slots ?? [3]
  const db = await freshDatabase(t)
  for (const [key, value] of Object.entries(options.settings ?? {})) {
    await db.sql`insert into rhpool.settings (key, value) values (${key}, ${value}) on conflict (key) do update set value = excluded.value`
  }
  const sim = await startSimulator({
    ...options.simOptions,
    accounts: slots.map((s, i) => ({ apiKey: testKeys[i]!, concurrency: options.simConcurrency ?? s })),
    config: { taskDurationMs: 100, callbackRetry: { attempts: 5, intervalMs: 300 }, ...options.sim },
  })
  t.teardown(() => sim.close())
  const files = await startFileServer(t)
  const [port, adminPort] = (await freePorts(2)) as [number, number]
  const env: Record<string, string> = {
    DATABASE_URL: db.url,
    RUNNINGHUB_BASE_URL: sim.url,
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    WEBHOOK_SECRET: testSecret,
    HOST: '127.0.0.1',
    PORT: String(port),
    ADMIN_PORT: String(adminPort),
    RHPOOL_POLL_INTERVAL_MS: '200',
    RHPOOL_RETRY_BASE_MS: '50',
    RHPOOL_RETRY_MAX_MS: '200',
    RHPOOL_REQUEST_TIMEOUT_MS: '2000',
    RHPOOL_MAINTENANCE_INTERVAL_MS: '1000',
    LOG_LEVEL: 'debug',
    // The input file server is on 127.0.0.1, which production refuses to fetch from.
    RHPOOL_ALLOW_PRIVATE_INPUTS: 'true',
    ...Object.fromEntries(
      slots.flatMap((s, i) => [
        [i === 0 ? 'RUNNINGHUB_API_KEY' : `RUNNINGHUB_API_KEY_${i + 1}`, testKeys[i]!],
        [`RUNNINGHUB_SLOTS_${i + 1}`, String(s)],
      ])
    ),
    ...options.env,
  }
  const config = loadConfig(env)
  const logs: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk))
      done()
    },
  })
  let service: Service | null = null
  if (options.inProcess !== false) {
    service = await startService(config, createLogger('debug', sink))
    t.teardown(() => service!.stop())
  }
  const system: System = {
    db,
    sim,
    env,
    config,
    service,
    files,
    logs,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    // A bound on something observable, not a pause: generous, so a busy machine is slow, not red.
    async waitFor(what, check, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const value = await check()
        if (value) return value
        if (Date.now() > deadline) {
          // The warnings rhpool logged meanwhile usually say why.
          const warnings = logs
            .filter((line) => /"level":(40|50|60)/.test(line))
            .slice(-5)
            .join('')
          throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${warnings ? `; last warnings:\n${warnings}` : ''}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
    async jobs() {
      return await db.sql`select * from rhpool.jobs order by created_at`
    },
  }
  return system
}

export interface RhpoolProcess {
  child: ChildProcess
  output: string[]
  exited: Promise<number | null>
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/** rhpool as its own process (`rhpool start`, the production command), for tests that kill it. */
export function spawnRhpool(t: TestLike, env: Record<string, string>): RhpoolProcess {
  const child = spawn(process.execPath, [join(projectRoot, 'bin', 'rhpool.js'), 'start'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output: string[] = []
  child.stdout!.on('data', (chunk) => output.push(String(chunk)))
  child.stderr!.on('data', (chunk) => output.push(String(chunk)))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return {
    child,
    output,
    exited,
    async kill(signal = 'SIGKILL') {
      child.kill(signal)
      return await exited
    },
  }
}

/** Accepted submissions per job (table/id), from the simulator's ledger. */
export function tasksPerJob(sim: Simulator): Map<string, number> {
  const perJob = new Map<string, number>()
  for (const s of sim.ledger.submissions) {
    if (!s.taskId || !s.jobRef) continue
    const job = s.jobRef.split('/').slice(3, 5).join('/')
    perJob.set(job, (perJob.get(job) ?? 0) + 1)
  }
  return perJob
}
