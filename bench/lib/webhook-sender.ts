// The sending side of bench/webhook.ts, in a process of its own so that the
// webhook route's event loop is its own, as in production (RunningHub sends
// from elsewhere). Reads the deliveries (JSON: [{ path, body }]) from the file
// named by its first argument and posts them to the base URL of its second,
// with as many requests in flight as its third says; prints one JSON line:
// wall seconds, each request's latency, the status counts and its own CPU.
//
//   node --import tsx bench/lib/webhook-sender.ts deliveries.json http://127.0.0.1:PORT 32
import { readFileSync } from 'node:fs'
import { Agent, request } from 'undici'

export interface SenderReport {
  seconds: number
  latencies: number[]
  statuses: Record<string, number>
  cpuSeconds: number
}

const [file, baseUrl, inFlightText] = process.argv.slice(2)
const inFlight = Number(inFlightText)
if (!file || !baseUrl || !Number.isInteger(inFlight) || inFlight < 1) {
  process.stderr.write('usage: webhook-sender.ts <deliveries.json> <base url> <requests in flight>\n')
  process.exit(2)
}
const deliveries = JSON.parse(readFileSync(file, 'utf8')) as Array<{ path: string; body: string }>
const agent = new Agent({ connections: inFlight })
const latencies: number[] = []
const statuses: Record<string, number> = {}
let cursor = 0
const cpuBefore = process.cpuUsage()
const started = performance.now()
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (cursor < deliveries.length) {
      const delivery = deliveries[cursor++]!
      const t0 = performance.now()
      const response = await request(`${baseUrl}${delivery.path}`, {
        method: 'POST',
        body: delivery.body,
        headers: { 'content-type': 'application/json' },
        dispatcher: agent,
      })
      await response.body.dump()
      latencies.push(performance.now() - t0)
      statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1
    }
  })
)
const seconds = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
await agent.close()
const report: SenderReport = { seconds, latencies, statuses, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
process.stdout.write(JSON.stringify(report) + '\n')
