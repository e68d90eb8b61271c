// The status page: GET /dashboard is one self-contained HTML file (inline CSS
// and JS, no external assets) that polls GET /dashboard/data every second. The
// data is one SQL call, rhpool.dashboard_data(), so the page shows what psql
// shows. Account names only, never a key or its fingerprint.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import type { Sql } from '../db/connect.ts'
import { dashboardData } from '../db/rhpool.ts'

const page = readFileSync(new URL('./dashboard.html', import.meta.url), 'utf8')

// The page's own inline script and style are the only ones allowed to run:
// the Content-Security-Policy names them by hash, and the page may talk to
// this server only.
const inlineHash = (tag: 'script' | 'style'): string => {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(page)
  if (!match) throw new Error(`dashboard.html has no inline <${tag}>`)
  return `'sha256-${createHash('sha256').update(match[1]!).digest('base64')}'`
}
const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src ${inlineHash('script')}`,
  `style-src ${inlineHash('style')}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const defaultRecent = 15
const maxRecent = 100
// Several open pages share one query: a request within this window of the
// last answer gets that answer, and concurrent requests share one query.
const shareMs = 500

export function registerDashboardRoutes(app: FastifyInstance, deps: { sql: Sql }): void {
  const { sql } = deps
  const shared = new Map<number, { at: number; data: Promise<unknown> }>()

  const load = (recent: number): Promise<unknown> => {
    const hit = shared.get(recent)
    if (hit && Date.now() - hit.at < shareMs) return hit.data
    const data: Promise<unknown> = dashboardData(sql, recent)
    shared.set(recent, { at: Date.now(), data })
    data.catch(() => shared.delete(recent))
    return data
  }

  app.get('/dashboard', async (_request, reply) => {
    return reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', contentSecurityPolicy)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(page)
  })

  app.get<{ Querystring: { recent?: string } }>('/dashboard/data', async (request, reply) => {
    const raw = request.query.recent
    let recent = defaultRecent
    if (raw !== undefined) {
      if (!/^\d{1,3}$/.test(raw) || Number(raw) > maxRecent) {
        return reply
          .code(400)
          .send({ error: `recent must be a whole number from 0 to ${maxRecent}, got ${JSON.stringify(String(raw).slice(0, 20))}` })
      }
      recent = Number(raw)
    }
    const data = await load(recent)
    return reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(data)
  })
}
