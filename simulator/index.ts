// A faithful local stand-in for RunningHub's OpenAPI (v2 and classic), with a ledger of
// everything that happened and injectable faults, so rhpool's guarantees can be tested
// without ever contacting the real service.
import type { AddressInfo } from 'node:net'
import { AccountBook } from './accounts.ts'
import { CallbackSender } from './callbacks.ts'
import { defaultConfig, mergeConfig, type ConfigPatch } from './config.ts'
import { CreateFlow } from './create.ts'
import { TaskEngine } from './engine.ts'
import { FaultBook } from './faults.ts'
import { Ledger, type LedgerView } from './ledger.ts'
import { formatCents, toCents } from './money.ts'
import { seededRandom, taskIdGenerator } from './random.ts'
import { classicEndpoints } from './routes-classic.ts'
import { v2Endpoints } from './routes-v2.ts'
import { buildServer } from './server.ts'
import { Timers } from './timers.ts'
import { queueStatusData } from './views.ts'
import type { AccountOptions, ApiKeyType, Fault, FaultHandle, SimulatorConfig, SimulatorOptions, TaskRecord } from './types.ts'

export type * from './types.ts'
export type { ConfigPatch } from './config.ts'
export type { LedgerView } from './ledger.ts'
export { fingerprint } from './fingerprint.ts'

/** What GET /openapi/v2/queue/status answers (counts are strings, as RunningHub sends them). */
export interface QueueStatus {
  code: 0
  msg: string
  data: {
    apiKeyType: ApiKeyType
    concurrentLimit: number
    runningCount: string
    queuedCount: string
    totalCurrentTasks: string
  }
}

export interface AccountSummary {
  /** Fingerprint, never the key. */
  apiKey: string
  concurrency: number
  balance: string
  coins: number
  running: number
}

export interface Simulator {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  readonly url: string
  readonly port: number
  readonly ledger: LedgerView
  /** The configuration now in force (a copy). */
  readonly config: SimulatorConfig
  close(): Promise<void>
  addAccount(apiKey: string, options?: AccountOptions): void
  setBalance(apiKey: string, money: string | number): void
  setConcurrency(apiKey: string, concurrency: number): void
  /** The key becomes unknown (802); its tasks still finish and call back. */
  removeAccount(apiKey: string): boolean
  balance(apiKey: string): string
  accounts(): AccountSummary[]
  configure(patch: ConfigPatch): void
  inject(fault: Fault): FaultHandle
  clearFaults(): void
  /** From now on query/status/outputs/cancel answer 807 for this task. */
  forget(taskId: string): boolean
  queueStatus(apiKey: string): QueueStatus
  task(taskId: string): TaskRecord | undefined
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  let config = mergeConfig(defaultConfig(), options.config ?? {})
  const getConfig = () => config
  const seed = options.seed ?? 1
  // Separate streams: drawing a task id must not shift which request a chaos fault hits.
  const faultRandom = seededRandom(seed)
  const taskRandom = seededRandom(seed ^ 0x5bd1e995)

  const timers = new Timers()
  const ledger = new Ledger()
  const accounts = new AccountBook()
  const faults = new FaultBook(faultRandom, getConfig)
  const callbacks = new CallbackSender(ledger, timers, getConfig)
  const engine = new TaskEngine(ledger, timers, callbacks, getConfig, taskRandom, taskIdGenerator({ repeatableSeed: options.taskIdSeed }))
  const create = new CreateFlow(accounts, engine, faults, ledger, getConfig)
  for (const { apiKey, ...rest } of options.accounts ?? []) accounts.add(apiKey, rest)

  const ctx = { accounts, engine, create, callbacks, config: getConfig }
  const app = buildServer([...v2Endpoints(ctx), ...classicEndpoints(ctx)], {
    faults,
    timers,
    bodyLimitBytes: options.bodyLimitBytes ?? 1024 * 1024,
    logger: options.logger ?? false,
  })
  await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 })
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address

  let closing: Promise<void> | null = null

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    ledger,
    get config() {
      return structuredClone(config)
    },
    close() {
      closing ??= (async () => {
        timers.close()
        callbacks.close()
        await app.close()
      })()
      return closing
    },
    addAccount: (apiKey, accountOptions) => void accounts.add(apiKey, accountOptions),
    setBalance: (apiKey, money) => {
      accounts.require(apiKey).balanceCents = toCents(money)
    },
    setConcurrency: (apiKey, concurrency) => {
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be a positive integer')
      accounts.require(apiKey).concurrency = concurrency
    },
    removeAccount: (apiKey) => accounts.remove(apiKey),
    balance: (apiKey) => formatCents(accounts.require(apiKey).balanceCents),
    accounts: () =>
      accounts.list().map((a) => ({
        apiKey: a.fingerprint,
        concurrency: a.concurrency,
        balance: formatCents(a.balanceCents),
        coins: a.coins,
        running: engine.load(a.apiKey).total,
      })),
    configure: (patch) => {
      config = mergeConfig(config, patch)
    },
    inject: (fault) => faults.inject(fault),
    clearFaults: () => faults.clear(),
    forget: (taskId) => engine.forget(taskId),
    queueStatus: (apiKey) => {
      const account = accounts.require(apiKey)
      return { code: 0, msg: 'success', data: queueStatusData(account, engine.load(apiKey)) }
    },
    task: (taskId) => ledger.task(taskId),
  }
}
