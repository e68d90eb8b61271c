// `npm start`: one rhpool process (dispatcher + HTTP server), configured from
// the environment. SIGTERM/SIGINT drain and stop; SIGHUP re-reads the
// RunningHub keys from RHPOOL_ENV_FILE (a running process cannot see a new
// environment) and syncs the account list.
import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { ConfigError, loadConfig } from './config/index.ts'
import { createLogger } from './log.ts'
import { startService } from './service.ts'

function environment(): NodeJS.ProcessEnv {
  const file = process.env.RHPOOL_ENV_FILE
  if (!file) return process.env
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new ConfigError('RHPOOL_ENV_FILE', `cannot be read: ${(error as Error).message}`)
  }
  // The file wins for the variables it sets; a key removed from it is removed.
  const fromFile = parseEnv(text) as NodeJS.ProcessEnv
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^RUNNINGHUB_(API_KEY|SLOTS)/.test(k)))
  return { ...base, ...fromFile }
}

async function main(): Promise<void> {
  let config
  try {
    config = loadConfig(environment())
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`rhpool: configuration error: ${error.message}\n`)
      process.exit(2)
    }
    throw error
  }
  const log = createLogger(config.logLevel)
  const service = await startService(config, log)

  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'stopping: draining in-flight submissions')
    service.stop().then(
      () => process.exit(0),
      (error: Error) => {
        log.error({ err: error.message }, 'unclean stop')
        process.exit(1)
      }
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => {
    try {
      const next = loadConfig(environment())
      service.reloadAccounts(next).then(
        () => log.info({ accounts: next.accounts.map((a) => a.name) }, 'accounts reloaded'),
        (error: Error) => log.error({ err: error.message }, 'account reload failed')
      )
    } catch (error) {
      log.error({ err: (error as Error).message }, 'SIGHUP: configuration error, accounts unchanged')
    }
  })
}

main().catch((error: Error) => {
  process.stderr.write(`rhpool: ${error.message}\n`)
  process.exit(1)
})
