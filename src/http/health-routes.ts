// Liveness, readiness and Prometheus metrics. Pool gauges are read from the
// database at scrape time, so every instance reports the same truth.
import type { FastifyInstance } from 'fastify'
import { Gauge } from 'prom-client'
import type { Sql } from '../db/connect.ts'
import { accountStatus, queueStatus } from '../db/rhpool.ts'
import type { Metrics } from '../metrics.ts'

export interface Readiness {
  /** False when this process's dispatcher has lost LISTEN (null: no dispatcher here). */
  listening(): boolean | null
}

/** Liveness only: no data, so it may be served on the public listener too. */
export function registerLiveness(app: FastifyInstance): void {
  app.get('/healthz', async () => ({ ok: true }))
}

/** Readiness and metrics: the operator's (admin listener). */
export function registerHealthRoutes(app: FastifyInstance, deps: { sql: Sql; metrics: Metrics; readiness: Readiness }): void {
  const { sql, metrics, readiness } = deps

  const queued = new Gauge({
    name: 'rhpool_queue_depth',
    help: 'Queued jobs per tool',
    labelNames: ['tool'],
    registers: [metrics.registry],
  })
  const oldest = new Gauge({
    name: 'rhpool_queue_oldest_wait_seconds',
    help: 'Age of the oldest queued job per tool',
    labelNames: ['tool'],
    registers: [metrics.registry],
  })
  const running = new Gauge({
    name: 'rhpool_account_running',
    help: 'Tasks in flight per account',
    labelNames: ['account'],
    registers: [metrics.registry],
  })
  const slots = new Gauge({
    name: 'rhpool_account_slots',
    help: 'Slots per account',
    labelNames: ['account'],
    registers: [metrics.registry],
  })
  const limit = new Gauge({
    name: 'rhpool_account_limit',
    help: "Concurrency limits per account: configured slots, RunningHub's reported concurrentLimit, the limit learned from refusals, and the effective one admission counts against",
    labelNames: ['account', 'kind'],
    registers: [metrics.registry],
  })
  const limitedBy = new Gauge({
    name: 'rhpool_account_limited_by',
    help: "1 for what sets the account's effective limit: configured, reported or learned",
    labelNames: ['account', 'by'],
    registers: [metrics.registry],
  })
  const usable = new Gauge({
    name: 'rhpool_account_usable',
    help: '1 when the account takes work (enabled, not cooling down, its key held by a live dispatcher)',
    labelNames: ['account'],
    registers: [metrics.registry],
  })

  app.get('/readyz', async (_request, reply) => {
    try {
      await sql`select 1`
    } catch (error) {
      return reply.code(503).send({ ok: false, database: false, error: (error as Error).message })
    }
    const listening = readiness.listening()
    if (listening === false) return reply.code(503).send({ ok: false, database: true, listening: false })
    return { ok: true, database: true, listening }
  })

  app.get('/metrics', async (_request, reply) => {
    const tools = await queueStatus(sql)
    for (const t of tools) {
      queued.set({ tool: t.tool }, t.queued)
      oldest.set({ tool: t.tool }, t.oldest_wait_seconds)
    }
    const accounts = await accountStatus(sql)
    // A limit no longer reported or learned must disappear, not linger at its last value.
    limit.reset()
    limitedBy.reset()
    for (const a of accounts) {
      running.set({ account: a.name }, a.running)
      slots.set({ account: a.name }, a.configured_slots)
      limit.set({ account: a.name, kind: 'configured' }, a.configured_slots)
      if (a.reported_concurrency !== null) limit.set({ account: a.name, kind: 'reported' }, a.reported_concurrency)
      if (a.learned_limit !== null) limit.set({ account: a.name, kind: 'learned' }, a.learned_limit)
      limit.set({ account: a.name, kind: 'effective' }, a.max_slots)
      const by = a.max_slots >= a.configured_slots ? 'configured' : a.learned_limit === a.max_slots ? 'learned' : 'reported'
      limitedBy.set({ account: a.name, by }, 1)
      usable.set({ account: a.name }, a.enabled && !a.cooldown_until && a.key_holders > 0 ? 1 : 0)
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })
}
