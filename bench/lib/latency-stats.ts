// Latency summaries from client-side timings (milliseconds).

export interface LatencySummary {
  count: number
  meanMs: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  maxMs: number
}

/** Nearest-rank percentile: always a latency that was actually observed. */
function percentile(sorted: number[], fraction: number): number {
  const rank = Math.max(1, Math.ceil(fraction * sorted.length))
  return sorted[rank - 1] ?? Number.NaN
}

export function summarize(latenciesMs: number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b)
  const total = sorted.reduce((sum, ms) => sum + ms, 0)
  return {
    count: sorted.length,
    meanMs: sorted.length ? total / sorted.length : Number.NaN,
    p50Ms: percentile(sorted, 0.5),
    p95Ms: percentile(sorted, 0.95),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
  }
}

/** Times one async call with the monotonic clock; returns its result and duration. */
export async function timed<T>(call: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now()
  const result = await call()
  return { result, ms: performance.now() - started }
}
