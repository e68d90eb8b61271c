// The whole runtime configuration, read from the environment once, validated
// with zod, frozen. A bad value stops the process at start with a message
// naming the variable and saying why.
import { z } from 'zod'
import { accountsFromEnv, type AccountConfig } from './accounts.ts'
import { ConfigError } from './errors.ts'

export { ConfigError } from './errors.ts'
export type { AccountConfig } from './accounts.ts'

export interface Config {
  databaseUrl: string
  accounts: AccountConfig[]
  runningHubBaseUrl: string
  /** Where RunningHub can reach this service's webhook route. */
  publicBaseUrl: string
  webhookSecret: string
  /** host/port: the public listener (webhook, /healthz); admin*: the operator's (status, dashboard, metrics). */
  http: {
    host: string
    port: number
    adminHost: string
    adminPort: number
    enabled: boolean
    /** Deliveries with an invalid signature one source IP may send per minute before it is answered 429. */
    invalidDeliveriesPerMinute: number
  }
  dispatcher: {
    enabled: boolean
    /** How many submissions one process runs at once. */
    maxConcurrentSubmissions: number
    /** Backstop poll when no NOTIFY arrives. */
    pollIntervalMs: number
    /** How often this dispatcher declares its keys (rhpool.dispatcher_heartbeat). */
    heartbeatIntervalMs: number
    /** It stops counting as holding its keys after this many intervals without a heartbeat. */
    heartbeatStaleAfter: number
    /** Inputs rhpool itself fetches (fields marked `upload` in the tool registry). */
    inputs: {
      /** RunningHub's upload cap by default; nothing beyond it is kept in memory. */
      maxBytes: number
      /**
       * One deadline for a whole download, redirects included. Null: half the
       * lease (the lease_seconds setting), at most a minute; never more than
       * half the lease (see inputDeadlineMs).
       */
      deadlineMs: number | null
      /** Unsafe: lets inputs come from loopback and private addresses (tests, local development). */
      allowPrivate: boolean
    }
    requestTimeoutMs: number
    /** Check each callback with POST /openapi/v2/query before trusting it. */
    confirmCallbacks: boolean
    retryBaseMs: number
    retryMaxMs: number
    /** Run maintenance on the dispatcher's own timer (when pg_cron is absent). */
    maintenanceIntervalMs: number
    /** How often the queue's journal is folded into its counts (db/functions/025-queue-counts.sql). */
    queueFoldIntervalMs: number
  }
  logLevel: string
}

const urlOf = (what: string) =>
  z
    .string()
    .trim()
    .url(`must be a URL (${what})`)
    .refine((u) => /^https?:\/\//.test(u), 'must start with http:// or https://')

const integer = (min: number, max: number, fallback: number) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v) => (v === undefined || v === '' ? String(fallback) : v))
    .refine((v) => /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max, `must be a whole number from ${min} to ${max}`)
    .transform(Number)

const flag = (fallback: boolean) =>
  z
    .string()
    .trim()
    .optional()
    .transform((v) => (v === undefined || v === '' ? String(fallback) : v.toLowerCase()))
    .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), 'must be true or false')
    .transform((v) => ['true', '1', 'yes'].includes(v))

const schema = z.object({
  // Unset and blank read alike, so both get the same message.
  DATABASE_URL: z.preprocess(
    (v) => v ?? '',
    z
      .string()
      .trim()
      .min(1, 'is required (postgres://user:password@host:5432/database)')
      .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// connection string')
  ),
  RUNNINGHUB_BASE_URL: urlOf('RunningHub host, e.g. https://www.runninghub.ai').default('https://www.runninghub.ai'),
  PUBLIC_BASE_URL: urlOf('this service as RunningHub reaches it, e.g. https://rhpool.example.com').optional(),
  WEBHOOK_SECRET: z
    .string()
    .min(32, 'must be at least 32 characters (it signs webhook URLs; generate one with `openssl rand -hex 32`)')
    .optional(),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PORT: integer(0, 65535, 8080),
  ADMIN_HOST: z.string().trim().min(1).default('127.0.0.1'),
  ADMIN_PORT: integer(0, 65535, 8081),
  RHPOOL_HTTP: flag(true),
  RHPOOL_WEBHOOK_INVALID_PER_MINUTE: integer(1, 100000, 20),
  RHPOOL_DISPATCHER: flag(true),
  RHPOOL_MAX_CONCURRENT_SUBMISSIONS: integer(1, 1000, 32),
  RHPOOL_POLL_INTERVAL_MS: integer(50, 600000, 2000),
  RHPOOL_HEARTBEAT_INTERVAL_MS: integer(50, 600000, 5000),
  RHPOOL_HEARTBEAT_STALE_AFTER: integer(2, 100, 3),
  RHPOOL_INPUT_MAX_BYTES: integer(1, 1024 * 1024 * 1024, 30 * 1024 * 1024),
  // Unset or 0: half the lease, at most a minute (inputDeadlineMs).
  RHPOOL_INPUT_DEADLINE_MS: integer(0, 3600000, 0),
  RHPOOL_ALLOW_PRIVATE_INPUTS: flag(false),
  RHPOOL_REQUEST_TIMEOUT_MS: integer(100, 600000, 30000),
  RHPOOL_CONFIRM_CALLBACKS: flag(true),
  RHPOOL_RETRY_BASE_MS: integer(1, 600000, 2000),
  RHPOOL_RETRY_MAX_MS: integer(1, 3600000, 120000),
  RHPOOL_MAINTENANCE_INTERVAL_MS: integer(1000, 3600000, 15000),
  RHPOOL_QUEUE_FOLD_INTERVAL_MS: integer(100, 600000, 1000),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      message: 'must be one of fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
})

// Facts the database owns (rhpool.settings): every dispatcher reads the same
// value, and an operator changes it at run time. Setting one of these
// variables is a mistake worth stopping for, not one to ignore.
const movedToSettings: Array<[variable: string, setting: string, example: string]> = [
  ['RHPOOL_STRATEGY', 'strategy', 'spread'],
  ['RHPOOL_LEASE_SECONDS', 'lease_seconds', '120'],
]

/**
 * How long one input download may take: a download that outlives the claim's
 * lease would let the claim be recovered (and run twice) under it, so at most
 * half the lease (renewed before each download), and a minute when unset.
 */
export function inputDeadlineMs(leaseSeconds: number, configuredMs: number | null): number {
  return Math.min(configuredMs ?? 60_000, (leaseSeconds * 1000) / 2)
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new ConfigError(String(issue.path[0] ?? 'configuration'), issue.message)
  }
  const v = parsed.data
  for (const [variable, setting, example] of movedToSettings) {
    if (env[variable] !== undefined && env[variable]!.trim() !== '') {
      throw new ConfigError(
        variable,
        `is no longer read: it is the database setting ${setting}, one value for every dispatcher, changed at run time with \`update rhpool.settings set value = '${example}' where key = '${setting}'\``
      )
    }
  }
  const accounts = accountsFromEnv(env)
  const dispatcherEnabled = v.RHPOOL_DISPATCHER
  if (dispatcherEnabled && accounts.length === 0) {
    throw new ConfigError(
      'RUNNINGHUB_API_KEY',
      'is required: the dispatcher needs at least one RunningHub account (set RHPOOL_DISPATCHER=false to run only the webhook and status server)'
    )
  }
  if (!v.WEBHOOK_SECRET) {
    throw new ConfigError(
      'WEBHOOK_SECRET',
      'is required (at least 32 characters): it signs the webhook URL each task carries, so forged callbacks change nothing'
    )
  }
  if (dispatcherEnabled && !v.PUBLIC_BASE_URL) {
    throw new ConfigError('PUBLIC_BASE_URL', 'is required: RunningHub must be told where to send the end-of-task callback')
  }
  if (v.RHPOOL_HTTP && v.ADMIN_PORT !== 0 && v.ADMIN_PORT === v.PORT && v.ADMIN_HOST === v.HOST) {
    throw new ConfigError(
      'ADMIN_PORT',
      `must differ from PORT (${v.PORT}): the admin listener (status, dashboard, metrics) is not the public one`
    )
  }
  if (v.RHPOOL_RETRY_MAX_MS < v.RHPOOL_RETRY_BASE_MS) {
    throw new ConfigError('RHPOOL_RETRY_MAX_MS', `must be at least RHPOOL_RETRY_BASE_MS (${v.RHPOOL_RETRY_BASE_MS})`)
  }
  return Object.freeze({
    databaseUrl: v.DATABASE_URL,
    accounts,
    runningHubBaseUrl: v.RUNNINGHUB_BASE_URL.replace(/\/+$/, ''),
    publicBaseUrl: (v.PUBLIC_BASE_URL ?? `http://${v.HOST}:${v.PORT}`).replace(/\/+$/, ''),
    webhookSecret: v.WEBHOOK_SECRET,
    http: {
      host: v.HOST,
      port: v.PORT,
      adminHost: v.ADMIN_HOST,
      adminPort: v.ADMIN_PORT,
      enabled: v.RHPOOL_HTTP,
      invalidDeliveriesPerMinute: v.RHPOOL_WEBHOOK_INVALID_PER_MINUTE,
    },
    dispatcher: {
      enabled: dispatcherEnabled,
      maxConcurrentSubmissions: v.RHPOOL_MAX_CONCURRENT_SUBMISSIONS,
      pollIntervalMs: v.RHPOOL_POLL_INTERVAL_MS,
      heartbeatIntervalMs: v.RHPOOL_HEARTBEAT_INTERVAL_MS,
      heartbeatStaleAfter: v.RHPOOL_HEARTBEAT_STALE_AFTER,
      inputs: {
        maxBytes: v.RHPOOL_INPUT_MAX_BYTES,
        deadlineMs: v.RHPOOL_INPUT_DEADLINE_MS || null,
        allowPrivate: v.RHPOOL_ALLOW_PRIVATE_INPUTS,
      },
      requestTimeoutMs: v.RHPOOL_REQUEST_TIMEOUT_MS,
      confirmCallbacks: v.RHPOOL_CONFIRM_CALLBACKS,
      retryBaseMs: v.RHPOOL_RETRY_BASE_MS,
      retryMaxMs: v.RHPOOL_RETRY_MAX_MS,
      maintenanceIntervalMs: v.RHPOOL_MAINTENANCE_INTERVAL_MS,
      queueFoldIntervalMs: v.RHPOOL_QUEUE_FOLD_INTERVAL_MS,
    },
    logLevel: v.LOG_LEVEL,
  })
}
