// Posts webhook deliveries to rhpool with a fixed number of requests in
// flight, as RunningHub's callbacks would arrive: each request's latency and
// the count of each HTTP status. Used in-process by bench/pipeline.ts and from
// its own process by bench/lib/webhook-sender.ts (bench/webhook.ts).
import { Agent, request } from 'undici'

export interface Delivery {
  path: string
  body: string
}

export interface Posted {
  seconds: number
  latencies: number[]
  statuses: Map<number, number>
}

export async function postDeliveries(baseUrl: string, deliveries: Delivery[], inFlight: number): Promise<Posted> {
  const agent = new Agent({ connections: inFlight })
  const latencies: number[] = []
  const statuses = new Map<number, number>()
  let cursor = 0
  const started = performance.now()
  try {
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
          statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1)
        }
      })
    )
    return { seconds: (performance.now() - started) / 1000, latencies, statuses }
  } finally {
    await agent.close()
  }
}
