// Building blocks of the chaos run (test/chaos.test.ts, bench/soak.ts): a seeded
// random source, a round-robin webhook forwarder, and a supervisor that keeps
// rhpool processes alive, kills them on demand and keeps their logs.
import { appendFileSync, mkdirSync } from 'node:fs'
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import { join } from 'node:path'
import { spawnRhpool, type RhpoolProcess } from './system.ts'

export interface TestLike {
  teardown(fn: () => unknown): void
}

/** mulberry32: a small seeded PRNG, so a chaos schedule can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

export const between = (random: () => number, min: number, max: number): number => min + random() * (max - min)
export const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)]!
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------
// The forwarder: what a load balancer in front of the webhook servers does.
// A backend that refuses the connection (dead) is skipped; one that dies in the
// middle of a request gets the caller a 502, and RunningHub resends.
// ---------------------------------------------------------------------------

export interface Forwarder {
  url: string
  stats: { requests: number; failovers: number; badGateway: number }
  close(): Promise<void>
}

export async function startForwarder(backends: () => string[]): Promise<Forwarder> {
  let next = 0
  const stats = { requests: 0, failovers: 0, badGateway: 0 }

  const forward = (
    target: string,
    incoming: IncomingMessage,
    body: Buffer
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer } | 'refused' | 'failed'> =>
    new Promise((resolve) => {
      const url = new URL(incoming.url ?? '/', target)
      const outgoing = httpRequest(url, {
        method: incoming.method,
        headers: { ...incoming.headers, host: url.host, connection: 'close', 'content-length': String(body.length) },
        timeout: 10_000,
      })
      let connected = false
      outgoing.on('socket', (socket) => socket.on('connect', () => (connected = true)))
      outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')))
      outgoing.on('error', (error: NodeJS.ErrnoException) => resolve(!connected && error.code === 'ECONNREFUSED' ? 'refused' : 'failed'))
      outgoing.on('response', (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('error', () => resolve('failed'))
        response.on('end', () => {
          const headers: Record<string, string> = {}
          const type = response.headers['content-type']
          if (type) headers['content-type'] = type
          resolve({ status: response.statusCode ?? 502, headers, body: Buffer.concat(chunks) })
        })
      })
      outgoing.end(body)
    })

  const server: Server = createServer((incoming, reply) => {
    const chunks: Buffer[] = []
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk))
    incoming.on('end', async () => {
      stats.requests++
      const body = Buffer.concat(chunks)
      const list = backends()
      for (let tried = 0; tried < list.length; tried++) {
        const target = list[next++ % list.length]!
        const answer = await forward(target, incoming, body)
        if (answer === 'refused') {
          stats.failovers++
          continue
        }
        if (answer === 'failed') break
        reply.writeHead(answer.status, answer.headers).end(answer.body)
        return
      }
      stats.badGateway++
      reply.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

// ---------------------------------------------------------------------------
// The supervisor: named rhpool processes (dispatchers, webhook servers) that
// can be killed and restarted; every process's output goes to a log file.
// ---------------------------------------------------------------------------

export type Role = 'dispatcher' | 'webhook'

export interface Member {
  name: string
  role: Role
  env: Record<string, string>
  process: RhpoolProcess | null
  /** Incarnation number (1 = first start). */
  generation: number
  startedAt: number
  /** Set while the member is meant to be down (killed, waiting for its restart). */
  down: boolean
}

export interface ExitRecord {
  name: string
  pid: number | undefined
  code: number | null
  signal: NodeJS.Signals | null
  expected: boolean
  at: number
  uptimeMs: number
  /** It said it was up (dispatcher started / HTTP server listening) before it exited. */
  wasUp: boolean
  tail: string
}

/** A process that exited by itself because it could not reach the database while starting (Postgres was down). */
// Judged by what the process said, not by how long it lived: on a busy machine a start can take
// longer than any fixed bound before its first connection is refused. CONNECTION_CLOSED is
// postgres.js's word for a connection the server dropped mid-start (it began shutting down).
export const failedToStart = (exit: ExitRecord): boolean =>
  !exit.expected &&
  !exit.wasUp &&
  /ECONNREFUSED|ECONNRESET|CONNECTION_CLOSED|starting up|shutting down|terminating connection/.test(exit.tail)

export class Supervisor {
  readonly members = new Map<string, Member>()
  readonly exits: ExitRecord[] = []
  private closing = false

  constructor(
    private readonly t: TestLike,
    private readonly logDir: string
  ) {
    mkdirSync(logDir, { recursive: true })
  }

  add(name: string, role: Role, env: Record<string, string>): Member {
    const member: Member = { name, role, env, process: null, generation: 0, startedAt: 0, down: true }
    this.members.set(name, member)
    return member
  }

  alive(role?: Role): Member[] {
    return [...this.members.values()].filter((m) => !m.down && m.process && (role === undefined || m.role === role))
  }

  start(member: Member): RhpoolProcess {
    member.generation++
    member.down = false
    member.startedAt = Date.now()
    const child = spawnRhpool(this.t, member.env)
    member.process = child
    const generation = member.generation
    const logFile = join(this.logDir, `${member.name}.log`)
    appendFileSync(logFile, `\n==== ${new Date().toISOString()} ${member.name} #${generation} pid ${child.child.pid} ====\n`)
    let recent = ''
    let wasUp = false
    const flush = () => {
      // Taken out of the process's buffer, so a long soak does not hold every line in memory.
      const fresh = child.output.splice(0).join('')
      if (!fresh) return
      appendFileSync(logFile, fresh)
      wasUp ||= /"msg":"(dispatcher started|HTTP server listening)"/.test(fresh)
      recent = (recent + fresh).slice(-4000)
    }
    const timer = setInterval(flush, 1000)
    timer.unref()
    void child.exited.then((code) => {
      clearInterval(timer)
      flush()
      const expected = this.closing || member.process !== child || member.down
      const tail = recent.split('\n').slice(-15).join('\n')
      this.exits.push({
        name: member.name,
        pid: child.child.pid,
        code,
        signal: child.child.signalCode,
        expected,
        at: Date.now(),
        uptimeMs: Date.now() - member.startedAt,
        wasUp,
        tail,
      })
      if (!expected) {
        // It died by itself (a crash, or a start while the database was down): the supervisor brings it back.
        member.down = true
        setTimeout(() => {
          if (!this.closing && member.down && member.process === child) this.start(member)
        }, 1000).unref()
      }
    })
    return child
  }

  async kill(member: Member, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | undefined> {
    const proc = member.process
    if (!proc || member.down) return undefined
    member.down = true
    const pid = proc.child.pid
    await proc.kill(signal)
    return pid
  }

  restart(member: Member): void {
    if (this.closing || !member.down) return
    this.start(member)
  }

  /** Starts every member that is down. */
  reviveAll(): void {
    for (const member of this.members.values()) if (member.down) this.start(member)
  }

  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<Array<{ name: string; code: number | null }>> {
    this.closing = true
    const results = await Promise.all(
      [...this.members.values()].map(async (member) => {
        const proc = member.process
        if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null)
          return { name: member.name, code: proc?.child.exitCode ?? null }
        const timer = setTimeout(() => proc.child.kill('SIGKILL'), 15_000)
        const code = await proc.kill(signal)
        clearTimeout(timer)
        return { name: member.name, code }
      })
    )
    return results
  }
}
