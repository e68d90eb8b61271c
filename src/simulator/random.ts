// Seeded randomness so a chaos run (faultRates, failureRate) repeats exactly for a seed.

/** mulberry32: tiny, fast and good enough to decide faults; not for anything secret. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * RunningHub task ids are 64-bit integers shown as 19-digit strings starting with "19";
 * they do not fit a JS number, which is exactly what clients must survive. Ids grow with
 * random gaps, like ids handed out by a busy service.
 */
export function taskIdGenerator(random: () => number): () => string {
  let next = 1_900_000_000_000_000_000n + BigInt(Math.floor(random() * 1e15));
  return () => {
    next += 1n + BigInt(Math.floor(random() * 997));
    return next.toString();
  };
}

export function randomHex(random: () => number, length: number): string {
  let out = '';
  while (out.length < length) out += Math.floor(random() * 16).toString(16);
  return out;
}
