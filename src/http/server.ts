// The HTTP servers. Two listeners, because only one audience is the public:
//  * public (HOST/PORT): the webhook route RunningHub calls, and /healthz;
//  * admin (ADMIN_HOST/ADMIN_PORT, loopback by default): status, job views,
//    the dashboard, readiness and metrics — balances, RunningHub's raw texts
//    and every user's jobs, for the operator only.
// /healthz is on both: it says only "this process is up", and a load balancer
// in front of the public listener probes it there.
// Fastify, for its body limits and content-type handling (413/400 without
// custom code), its speed, and pino logging built in.
import Fastify, { type FastifyInstance } from 'fastify'
import type { Sql } from '../db/connect.ts'
import type { Logger } from '../log.ts'
import type { Metrics } from '../metrics.ts'
import { registerWebhookRoute } from '../webhook/route.ts'
import type { ClaimHandOver } from '../dispatcher/confirmer.ts'
import { registerStatusRoutes } from './status-routes.ts'
import { registerHealthRoutes, registerLiveness, type Readiness } from './health-routes.ts'
import { registerDashboardRoutes } from './dashboard-routes.ts'

export interface ServerDeps {
  sql: Sql
  log: Logger
  metrics: Metrics
  webhookSecret: string
  confirmCallbacks?: boolean
  invalidDeliveriesPerMinute?: number
  /** This process's confirmer, if it has one (the webhook route hands it the claims it can confirm). */
  handOver?: ClaimHandOver | null
  readiness: Readiness
}

function newServer(): FastifyInstance {
  return Fastify({
    // rhpool logs what matters itself (pino, one story per job); per-request access logs would drown it.
    logger: false,
    // Only the webhook takes bodies; it sets its own limit.
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
  })
}

/** The public listener: the webhook route and /healthz, nothing else. */
export async function buildPublicServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = newServer()
  registerWebhookRoute(app, {
    sql: deps.sql,
    secret: deps.webhookSecret,
    log: deps.log,
    metrics: deps.metrics,
    confirmCallbacks: deps.confirmCallbacks,
    invalidDeliveriesPerMinute: deps.invalidDeliveriesPerMinute,
    handOver: deps.handOver,
  })
  registerLiveness(app)
  await app.ready()
  return app
}

/** The operator's listener: status, jobs, dashboard, readiness, metrics. */
export async function buildAdminServer(deps: Pick<ServerDeps, 'sql' | 'metrics' | 'readiness'>): Promise<FastifyInstance> {
  const app = newServer()
  registerStatusRoutes(app, { sql: deps.sql })
  registerLiveness(app)
  registerHealthRoutes(app, deps)
  registerDashboardRoutes(app, { sql: deps.sql })
  await app.ready()
  return app
}
