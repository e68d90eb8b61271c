import { randomInt } from 'node:crypto'
// Seeded randomness so a chaos run (faultRates, failureRate) repeats exactly for a seed.

/** mulberry32: tiny, fast and good enough to decide faults; not for anything secret. */
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

/**
 * RunningHub task ids are 64-bit integers shown as 19-digit strings (real ones start with
 * "19" or "20"); they do not fit a JS number, which is exactly what clients must survive.
 *
 * Ids are unique across runs and processes, as a real service's are: a snowflake of the
 * millisecond clock (high bits), 10 bits drawn once per generator from the OS's randomness,
 * and a 12-bit sequence. A simulator restarted against the same database never hands out
 * an id a job already holds. (The seeded stream decides faults, not ids.)
 */
const snowflakeEpochMs = 1_288_834_974_657n
export function taskIdGenerator(options: { repeatableSeed?: number } = {}): () => string {
  if (options.repeatableSeed !== undefined) return repeatableTaskIds(seededRandom(options.repeatableSeed))
  const node = BigInt(randomInt(1024))
  let lastMs = 0n
  let sequence = 0n
  return () => {
    let ms = BigInt(Date.now())
    if (ms <= lastMs) {
      sequence = (sequence + 1n) & 0xfffn
      // 4096 ids in one millisecond (or a clock step back): borrow the next millisecond.
      if (sequence === 0n) lastMs += 1n
      ms = lastMs
    } else {
      sequence = 0n
      lastMs = ms
    }
    return (((ms - snowflakeEpochMs) << 22n) | (node << 12n) | sequence).toString()
  }
}

/**
 * Opt-in (`taskIdSeed`): the same ids in the same order on every start, as a RunningHub
 * that restarted its id sequence would hand out. No source says the real one does; it
 * exists to prove what rhpool does with a task id another job already holds.
 */
function repeatableTaskIds(random: () => number): () => string {
  let next = 1_900_000_000_000_000_000n + BigInt(Math.floor(random() * 1e15))
  return () => {
    next += 1n + BigInt(Math.floor(random() * 997))
    return next.toString()
  }
}

export function randomHex(random: () => number, length: number): string {
  let out = ''
  while (out.length < length) out += Math.floor(random() * 16).toString(16)
  return out
}
