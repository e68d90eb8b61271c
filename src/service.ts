// One rhpool process: the dispatcher and the HTTP server (either can be turned
// off), sharing one database pool, with a clean stop.
import type { FastifyInstance } from 'fastify'
import type { Config } from './config/index.ts'
import { connectDatabase, endPool, type Sql } from './db/connect.ts'
import { schemaReady } from './db/rhpool.ts'
import { refuseNewerDatabase } from './db/database-version.ts'
import { thisRelease } from './db/release.ts'
import { Dispatcher } from './dispatcher/dispatcher.ts'
import { buildAdminServer, buildPublicServer } from './http/server.ts'
import type { Logger } from './log.ts'
import { Metrics } from './metrics.ts'
import { Maintenance } from './maintenance/maintenance.ts'
import { Confirmer } from './dispatcher/confirmer.ts'
import { RecordedKeys } from './dispatcher/presence.ts'
import { RunningHubClient } from './runninghub/client.ts'

export interface Service {
  sql: Sql
  dispatcher: Dispatcher | null
  /** The public listener (webhook, /healthz). */
  server: FastifyInstance | null
  /** The operator's listener (status, jobs, dashboard, readiness, metrics). */
  admin: FastifyInstance | null
  maintenance: Maintenance | null
  /** The public listener's address (when HTTP runs). */
  url: string | null
  /** The admin listener's address (when HTTP runs). */
  adminUrl: string | null
  reloadAccounts(config: Config): Promise<void>
  stop(): Promise<void>
}

export async function startService(config: Config, log: Logger): Promise<Service> {
  const sql = connectDatabase(config.databaseUrl, { max: config.dispatcher.maxConcurrentSubmissions + 8 })
  if (!(await schemaReady(sql))) {
    await endPool(sql)
    throw new Error('the database has no rhpool schema: run `npm run migrate` (or `rhpool migrate`) against DATABASE_URL first')
  }
  // An older release's dispatcher would call a newer release's functions by its own idea of them.
  try {
    await refuseNewerDatabase(sql, thisRelease(), 'start')
  } catch (error) {
    await endPool(sql)
    throw error
  }
  const metrics = new Metrics()
  const dispatcher = config.dispatcher.enabled ? new Dispatcher({ sql, config, log, metrics }) : null
  await dispatcher?.start()
  const maintenance = dispatcher
    ? new Maintenance({ sql, config, log, metrics, client: dispatcher.runningHub, accounts: () => dispatcher.accountMap })
    : null
  await maintenance?.start()
  // A webhook-only process holds callbacks; with the keys it also confirms them, so none waits for a dispatcher.
  const confirmer = await startStandaloneConfirmer(config, sql, log)

  let server: FastifyInstance | null = null
  let admin: FastifyInstance | null = null
  let url: string | null = null
  let adminUrl: string | null = null
  if (config.http.enabled) {
    const readiness = { listening: () => (dispatcher ? dispatcher.listening : null) }
    server = await buildPublicServer({
      sql,
      log,
      metrics,
      webhookSecret: config.webhookSecret,
      confirmCallbacks: config.dispatcher.confirmCallbacks,
      invalidDeliveriesPerMinute: config.http.invalidDeliveriesPerMinute,
      handOver: dispatcher?.confirmer ?? confirmer?.confirmer ?? null,
      readiness,
    })
    admin = await buildAdminServer({ sql, metrics, readiness })
    try {
      url = await server.listen({ host: config.http.host, port: config.http.port })
      adminUrl = await admin.listen({ host: config.http.adminHost, port: config.http.adminPort })
    } catch (error) {
      // A port taken: give back what was started, so the error is the only consequence.
      await Promise.allSettled([server.close(), admin.close(), maintenance?.stop(), dispatcher?.stop(), confirmer?.stop()])
      await endPool(sql)
      throw error
    }
    log.info({ url, adminUrl }, 'HTTP listening: webhook on url, status/dashboard/metrics on adminUrl')
  }

  let stopped: Promise<void> | null = null
  return {
    sql,
    dispatcher,
    server,
    admin,
    maintenance,
    url,
    adminUrl,
    async reloadAccounts(next) {
      await dispatcher?.reloadAccounts(next.accounts)
    },
    stop() {
      stopped ??= (async () => {
        // Stop taking callbacks last: submissions finishing during the drain may still be answered.
        await maintenance?.stop()
        await dispatcher?.stop()
        await confirmer?.stop()
        await server?.close()
        await admin?.close()
        await endPool(sql)
      })()
      return stopped
    },
  }
}

async function startStandaloneConfirmer(
  config: Config,
  sql: Sql,
  log: Logger
): Promise<{ confirmer: Confirmer; stop(): Promise<void> } | null> {
  if (config.dispatcher.enabled || !config.http.enabled || !config.dispatcher.confirmCallbacks) return null
  if (config.accounts.length === 0) {
    log.info('webhook only, without RunningHub keys: the callbacks held here are confirmed by the dispatchers')
    return null
  }
  const client = new RunningHubClient(config.runningHubBaseUrl, config.dispatcher.requestTimeoutMs)
  // Only keys that are the recorded ones (a different key is a different RunningHub account): presence.ts.
  const keys = new RecordedKeys(sql, log, config.accounts)
  await keys.start(config.dispatcher.pollIntervalMs)
  const confirmer = new Confirmer({ sql, client: () => client, accounts: () => keys.accounts, log, config })
  await confirmer.start()
  return {
    confirmer,
    async stop() {
      await keys.stop()
      await confirmer.stop()
      await client.close()
    },
  }
}
