// rhpool as one process runs it (dispatcher + webhook route, startService),
// in this process, against the RunningHub simulator, also in this process.
// Everything listens on 127.0.0.1 only; the simulator calls back only there.
import { loadConfig } from '../../src/config/index.ts'
import { freePort } from '../../src/localdb/cluster.ts'
import { createLogger } from '../../src/log.ts'
import { startService, type Service } from '../../src/service.ts'
import { startSimulator, type Simulator } from '../../simulator/index.ts'
import type { Sql } from './bench-database.ts'
import { callbackEnv, type CallbackMode } from './command-line.ts'

export const benchWebhookSecret = 'bench-webhook-secret-0123456789abcdef0123456789'

export interface InProcessPoolOptions {
  databaseUrl: string
  accounts: number
  /** rhpool's slots per account (RUNNINGHUB_SLOTS). */
  slotsPerAccount: number
  /** What the simulator enforces per key; defaults to slotsPerAccount. */
  simulatorConcurrency?: number
  /** The simulator's task time for every app not in taskDurationByApp (ms). */
  taskDurationMs: number
  /** Per RunningHub app id (webappId) task times (ms). */
  taskDurationByApp?: Record<string, number>
  /**
   * Callbacks confirmed with RunningHub's query before they finish a job
   * (rhpool's default) or trusted as sent (RHPOOL_CONFIRM_CALLBACKS=false).
   */
  callbacks?: CallbackMode
  /** Extra rhpool environment variables (RHPOOL_…). */
  env?: Record<string, string>
  /**
   * The simulator's seed (task ids). By default each pool started in this
   * process gets its own: a second simulator with the same seed hands out the
   * same task ids again, which the job tables' unique task_id index refuses.
   */
  seed?: number
}

export interface InProcessPool {
  sim: Simulator
  service: Service
  /** The raw keys, in account order (account 1 = `primary`, n = `account_<n>`). */
  keys: string[]
  /** rhpool's account names, in the same order. */
  accountNames: string[]
  stop(): Promise<void>
}

export const benchKey = (n: number): string => `bench-key-${String(n).padStart(4, '0')}-abcdefghijklmnop`

/** The name rhpool gives the account of RUNNINGHUB_API_KEY (n = 1) or RUNNINGHUB_API_KEY_<n>. */
export const rhpoolAccountName = (n: number): string => (n === 1 ? 'primary' : `account_${n}`)

let poolsStarted = 0

export async function startInProcessPool(options: InProcessPoolOptions): Promise<InProcessPool> {
  poolsStarted++
  const keys = Array.from({ length: options.accounts }, (_, i) => benchKey(i + 1))
  const sim = await startSimulator({
    seed: options.seed ?? poolsStarted,
    accounts: keys.map((apiKey) => ({ apiKey, concurrency: options.simulatorConcurrency ?? options.slotsPerAccount, balance: '1000000' })),
    config: { taskDurationMs: options.taskDurationMs, taskDurationByApp: options.taskDurationByApp ?? {} },
  })
  let service: Service
  try {
    const port = await freePort()
    const env: Record<string, string> = {
      DATABASE_URL: options.databaseUrl,
      RUNNINGHUB_BASE_URL: sim.url,
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      WEBHOOK_SECRET: benchWebhookSecret,
      HOST: '127.0.0.1',
      PORT: String(port),
      // The admin listener (status, metrics, dashboard) on a free port, not 8081.
      ADMIN_PORT: '0',
      LOG_LEVEL: 'silent',
      RUNNINGHUB_SLOTS: String(options.slotsPerAccount),
      ...Object.fromEntries(keys.map((key, i) => [i === 0 ? 'RUNNINGHUB_API_KEY' : `RUNNINGHUB_API_KEY_${i + 1}`, key])),
      ...callbackEnv(options.callbacks ?? 'confirmed'),
      ...options.env,
    }
    service = await startService(loadConfig(env), createLogger('silent'))
  } catch (error) {
    await sim.close()
    throw error
  }
  return {
    sim,
    service,
    keys,
    accountNames: keys.map((_, i) => rhpoolAccountName(i + 1)),
    async stop() {
      await service.stop()
      await sim.close()
    },
  }
}

/** Every RunningHub app id rhpool.tools knows, per job table (the upscaler has one per version). */
export async function appIdsByTable(sql: Sql): Promise<Map<string, Map<string, string>>> {
  const rows = await sql`select job_table, app from rhpool.tools`
  const result = new Map<string, Map<string, string>>()
  for (const row of rows) {
    const apps = (row.app as { apps: Record<string, string> }).apps
    result.set(row.job_table as string, new Map(Object.entries(apps)))
  }
  return result
}

/** Polls `check` every `intervalMs` until it holds; throws after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000, intervalMs = 5): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
