// The sending side of bench/webhook.ts, in a process of its own so that the
// webhook route's event loop is its own, as in production (RunningHub sends
// from elsewhere). Reads the deliveries (JSON: [{ path, body }]) from the file
// named by its first argument and posts them to the base URL of its second,
// with as many requests in flight as its third says; prints one JSON line:
// wall seconds, each request's latency, the status counts and its own CPU.
//
//   node --import tsx bench/lib/webhook-sender.ts deliveries.json http://127.0.0.1:PORT 32
import { readFileSync } from 'node:fs'
import { postDeliveries, type Delivery } from './post-deliveries.ts'

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
const deliveries = JSON.parse(readFileSync(file, 'utf8')) as Delivery[]
const cpuBefore = process.cpuUsage()
const posted = await postDeliveries(baseUrl, deliveries, inFlight)
const cpu = process.cpuUsage(cpuBefore)
const report: SenderReport = {
  seconds: posted.seconds,
  latencies: posted.latencies,
  statuses: Object.fromEntries(posted.statuses),
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
}
process.stdout.write(JSON.stringify(report) + '\n')
