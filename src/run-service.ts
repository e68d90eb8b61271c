// Runs one rhpool process until a signal: SIGTERM/SIGINT drain and stop;
// SIGHUP re-reads the RunningHub keys from RHPOOL_ENV_FILE (a running process
// cannot see a new environment) and syncs the account list. Shared by
// `rhpool start` (production: the environment as it is) and `rhpool dev` (which
// fills in embedded defaults first).
import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { ConfigError, loadConfig } from './config/index.ts'
import { createLogger } from './log.ts'
import { startService } from './service.ts'

/** The base environment, with RHPOOL_ENV_FILE's keys and slots layered over it. */
export function environment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const file = base.RHPOOL_ENV_FILE
  if (!file) return base
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new ConfigError('RHPOOL_ENV_FILE', `cannot be read: ${(error as Error).message}`)
  }
  // The file wins for the variables it sets; a key removed from it is removed.
  const fromFile = parseEnv(text) as NodeJS.ProcessEnv
  const kept = Object.fromEntries(Object.entries(base).filter(([k]) => !/^RUNNINGHUB_(API_KEY|SLOTS)/.test(k)))
  return { ...kept, ...fromFile }
}

/**
 * How long a start may take before it fails. A start normally ends in a second or
 * fails at once (a refused connection). The soak once saw a webhook server exit with
 * Node's code 13 ("unsettled top-level await") and no message: its start met a
 * PostgreSQL shutdown, and postgres.js's end() without a deadline never settles after
 * that (fixed: endPool in db/connect.ts). This deadline keeps any other start that
 * never settles from failing silently.
 */
export const startDeadlineMs = 60_000

/** `started`, or a rejection naming the deadline if it has not settled by then. */
export async function withinDeadline<T>(started: Promise<T>, deadlineMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`${what} did not finish within ${deadlineMs / 1000} s (is the database reachable and accepting connections?)`)),
      deadlineMs
    )
  })
  try {
    return await Promise.race([started, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves when the service has stopped after a signal. Throws ConfigError on a bad configuration. */
export async function runService(base: NodeJS.ProcessEnv): Promise<void> {
  const config = loadConfig(environment(base))
  const log = createLogger(config.logLevel)
  const service = await withinDeadline(startService(config, log), startDeadlineMs, 'the start')

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping: draining in-flight submissions')
      process.off('SIGHUP', reload)
      resolve()
    }
    const reload = () => {
      try {
        const next = loadConfig(environment(base))
        service.reloadAccounts(next).then(
          () => log.info({ accounts: next.accounts.map((a) => a.name) }, 'accounts reloaded'),
          (error: Error) => log.error({ err: error.message }, 'account reload failed')
        )
      } catch (error) {
        log.error({ err: (error as Error).message }, 'SIGHUP: configuration error, accounts unchanged')
      }
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    process.on('SIGHUP', reload)
  })
  await service.stop()
}
