// Retry delay: exponential in the attempt, capped, with full jitter between
// half and one and a half times, so retries of many jobs do not arrive together.
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(exponential * (0.5 + random()))
}
