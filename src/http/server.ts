// The HTTP server: the webhook route, status, health and metrics. Fastify, for
// its body limits and content-type handling (413/400 without custom code), its
// speed, and pino logging built in.
import Fastify, { type FastifyInstance } from 'fastify'
import type { Sql } from '../db/connect.ts'
import type { Logger } from '../log.ts'
import type { Metrics } from '../metrics.ts'
import { registerWebhookRoute } from '../webhook/route.ts'
import { registerStatusRoutes } from './status-routes.ts'
import { registerHealthRoutes, type Readiness } from './health-routes.ts'
import { registerDashboardRoutes } from './dashboard-routes.ts'

export interface ServerDeps {
  sql: Sql
  log: Logger
  metrics: Metrics
  webhookSecret: string
  confirmCallbacks?: boolean
  readiness: Readiness
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    // rhpool logs what matters itself (pino, one story per job); per-request access logs would drown it.
    logger: false,
    // Only the webhook takes bodies; it sets its own limit.
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
  })
  registerWebhookRoute(app, { sql: deps.sql, secret: deps.webhookSecret, log: deps.log, metrics: deps.metrics, confirmCallbacks: deps.confirmCallbacks })
  registerStatusRoutes(app, { sql: deps.sql })
  registerHealthRoutes(app, deps)
  registerDashboardRoutes(app, { sql: deps.sql })
  await app.ready()
  return app
}
