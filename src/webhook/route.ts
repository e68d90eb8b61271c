// POST /webhooks/runninghub/:jobTable/:jobId/:attempt/:signature
//
// Answers fast: one short transaction, no outbound HTTP (a slow answer makes
// RunningHub resend). Every correctly signed delivery is recorded, whatever
// became of it; only a correctly signed TASK_END changes a job. A delivery
// whose signature does not verify costs the sender more than it costs rhpool:
// it is counted (rhpool.record_unverified_delivery: a counter per minute, a few
// short samples per hour), and a source that keeps sending them is answered
// 429 before its body is read or the database is asked (SourceLimit).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Sql } from '../db/connect.ts'
import { jobLabel, type Logger } from '../log.ts'
import type { Metrics } from '../metrics.ts'
import { verifyJobReference, webhookRoutePrefix } from './job-reference.ts'
import { CallbackFormatError, parseCallback } from './parse-callback.ts'
import { jsonbSafe, jsonbSafeText, nestingExceeds } from '../db/json.ts'
import { SourceLimit } from './source-limit.ts'
import { CallbackTaker, recordRejectedDelivery, recordUnverifiedDelivery, type CallbackFunction } from '../db/rhpool.ts'
import type { ClaimHandOver } from '../dispatcher/confirmer.ts'

export const webhookBodyLimit = 1024 * 1024
/** RunningHub's callbacks nest a few levels; anything far deeper is not one. */
const maxNesting = 64

interface Params {
  jobTable: string
  jobId: string
  attempt: string
  signature: string
}

export interface WebhookRouteDeps {
  sql: Sql
  secret: string
  log: Logger
  metrics?: Metrics
  confirmCallbacks?: boolean
  /** Unverifiable deliveries one source IP may send per minute before it gets 429s. */
  invalidDeliveriesPerMinute?: number
  /** This process's confirmer, when it has RunningHub keys: plainly valid claims go to it directly. */
  handOver?: ClaimHandOver | null
}

export function registerWebhookRoute(app: FastifyInstance, deps: WebhookRouteDeps): void {
  const { sql, secret, log, metrics } = deps
  const sources = new SourceLimit({ perMinute: deps.invalidDeliveriesPerMinute ?? 20 })
  // Each request's signature check, made once when it arrives (before its body is read).
  const verification = new WeakMap<FastifyRequest, ReturnType<typeof verifyJobReference>>()
  const verificationOf = (request: FastifyRequest) => verification.get(request) ?? verifyJobReference(secret, request.params as Params)
  // With confirmation on (the default), a callback is only held; a process with the keys checks it with RunningHub.
  const applyFunction: CallbackFunction = deps.confirmCallbacks ? 'receive_claim' : 'apply_callback'
  // Callbacks arriving together are written together; each request is answered once its batch is committed.
  const { handOver } = deps
  const callbacks = new CallbackTaker(sql, () =>
    handOver && deps.confirmCallbacks ? { keys: handOver.keysTaking(), leaseSeconds: handOver.leaseSeconds } : null
  )

  const record = async (
    outcome: string,
    status: number,
    detail: string,
    body: string | null,
    extra: { jobTable?: string; jobId?: string; attempt?: number; taskId?: string | null; event?: string } = {}
  ) => {
    metrics?.webhooks.inc({ outcome })
    try {
      await recordRejectedDelivery(sql, { outcome, httpStatus: status, detail, body, ...extra })
    } catch (error) {
      log.error({ err: (error as Error).message }, 'could not record a rejected webhook delivery')
    }
  }

  // Counted, a short sample kept; never the whole body, never a row each.
  const recordUnverified = async (outcome: string, status: number, detail: string, request: FastifyRequest, body: string | null) => {
    metrics?.webhooks.inc({ outcome })
    try {
      await recordUnverifiedDelivery(
        sql,
        outcome,
        status,
        `from ${request.ip}: ${detail}`,
        body === null ? null : jsonbSafeText(body.slice(0, 256))
      )
    } catch (error) {
      log.error({ err: (error as Error).message }, 'could not count an unverified webhook delivery')
    }
  }

  app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const verified = verifyJobReference(secret, request.params as Params)
      verification.set(request, verified)
      if (verified.ok || sources.take(request.ip)) return
      // Over the limit: refused before the body is read, without asking the database.
      metrics?.webhooks.inc({ outcome: 'rate_limited' })
      return reply
        .code(429)
        .header('retry-after', String(sources.retryAfterSeconds(request.ip)))
        .send({ error: 'too many deliveries with an invalid signature' })
    })

    // Take the body as text: a malformed or oversized one is recorded, not just refused.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: webhookBodyLimit }, (_request, body, done) => done(null, body))

    scope.setErrorHandler(async (error: Error & { statusCode?: number; code?: string }, request: FastifyRequest, reply) => {
      const tooLarge = error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413
      const status = tooLarge ? 413 : error.statusCode && error.statusCode < 500 ? error.statusCode : 500
      if (status < 500) {
        if (verificationOf(request).ok) await record(tooLarge ? 'too_large' : 'malformed', status, error.message, null)
        else await recordUnverified(tooLarge ? 'too_large' : 'malformed', status, error.message, request, null)
        log.warn({ url: request.url.replace(/\/[^/]+$/, '/…'), status }, `webhook refused: ${error.message}`)
        return reply.code(status).send({ error: tooLarge ? `body over ${webhookBodyLimit} bytes` : error.message })
      }
      log.error({ err: error.message }, 'webhook handler failed; RunningHub will resend')
      return reply.code(500).send({ error: 'internal error; please retry' })
    })

    scope.post<{ Params: Params; Body: string }>(`${webhookRoutePrefix}/:jobTable/:jobId/:attempt/:signature`, async (request, reply) => {
      const raw = typeof request.body === 'string' ? request.body : ''
      const verified = verificationOf(request)
      if (!verified.ok) {
        await recordUnverified('bad_signature', 401, verified.reason, request, raw)
        log.warn({ reason: verified.reason, source: request.ip }, 'webhook with an invalid signature refused')
        return reply.code(401).send({ error: 'invalid webhook signature' })
      }
      const { ref } = verified
      const job = jobLabel(ref.jobTable, ref.jobId)
      const where = { jobTable: ref.jobTable, jobId: ref.jobId, attempt: ref.attempt }

      let body: unknown
      try {
        body = JSON.parse(raw)
      } catch {
        await record('malformed', 400, 'body is not JSON', jsonbSafeText(raw), where)
        return reply.code(400).send({ error: 'body is not JSON' })
      }
      if (nestingExceeds(body, maxNesting)) {
        await record('malformed', 400, `JSON nested deeper than ${maxNesting} levels`, jsonbSafeText(raw.slice(0, 4096)), where)
        return reply.code(400).send({ error: `JSON nested deeper than ${maxNesting} levels` })
      }
      body = jsonbSafe(body)
      let parsed
      try {
        parsed = parseCallback(body)
      } catch (error) {
        if (!(error instanceof CallbackFormatError)) throw error
        await record('malformed', 400, error.message, jsonbSafeText(raw), where)
        log.warn({ job }, `malformed callback: ${error.message}`)
        return reply.code(400).send({ error: error.message })
      }
      if (parsed.kind === 'ignored') {
        await record('ignored_event', 200, `event ${parsed.event} is not TASK_END`, jsonbSafeText(raw), {
          ...where,
          taskId: parsed.taskId,
          event: parsed.event,
        })
        return reply.code(200).send({ ok: true, ignored: parsed.event })
      }

      // A TASK_END that cannot be acted on as sent (no status, SUCCESS without
      // results, both seen in production) is only held: the dispatcher asks
      // RunningHub's query with the account's key and applies its answer.
      const callback = parsed.kind === 'unsettled' ? { status: 'UNSETTLED', reason: parsed.reason } : parsed.end
      const fn = parsed.kind === 'unsettled' ? 'hold_callback' : applyFunction
      const { outcome, handed } = await callbacks.take(fn, { ...ref, taskId: parsed.taskId }, callback, jsonbSafeText(raw))
      if (handed) handOver?.take(handed)
      metrics?.webhooks.inc({ outcome })
      log.info({ job, taskId: parsed.taskId, status: callback.status, outcome }, 'callback')
      return reply.code(200).send({ ok: true, outcome })
    })
  })
}
