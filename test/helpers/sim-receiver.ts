// A tiny webhook receiver for simulator tests: records every callback and answers with a
// status the test chooses.
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedCallback {
  at: number
  path: string
  body: Record<string, unknown>
}

export interface Receiver {
  url: string
  readonly received: ReceivedCallback[]
  /** Status to answer the nth (0-based) delivery with; default 200. */
  answerWith(fn: (index: number, callback: ReceivedCallback) => number): void
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedCallback[]>
  close(): Promise<void>
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
}

export async function startReceiver(): Promise<Receiver> {
  const received: ReceivedCallback[] = []
  let statusFor: (index: number, callback: ReceivedCallback) => number = () => 200
  const waiters = new Set<() => void>()

  const server = createServer((req, res) => {
    readJson(req).then(
      (body) => {
        const callback = { at: Date.now(), path: req.url ?? '', body }
        const index = received.length
        received.push(callback)
        for (const wake of waiters) wake()
        res.statusCode = statusFor(index, callback)
        res.end('{}')
      },
      () => {
        res.statusCode = 400
        res.end()
      }
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    received,
    answerWith(fn) {
      statusFor = fn
    },
    waitFor(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length >= count) {
            waiters.delete(check)
            clearTimeout(timer)
            resolve(received.slice())
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`expected ${count} callbacks within ${timeoutMs} ms, got ${received.length}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    close() {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
