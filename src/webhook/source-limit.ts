// How many unverifiable deliveries (bad signature) one source may send before
// it is answered 429 without a database round trip: a token bucket per source
// IP, in this process's memory. Correctly signed deliveries never spend
// tokens, so RunningHub is never refused because a forger shares its address.
//
// Memory is bounded too: at most maxSources buckets; past that, sources whose
// bucket has refilled are forgotten, and if none has, the newcomers share one
// bucket (a forger with many addresses is limited as one).

export interface SourceLimitOptions {
  /** Deliveries allowed at once, and refilled per minute. */
  perMinute: number
  maxSources?: number
  now?: () => number
}

interface Bucket {
  tokens: number
  at: number
}

const sharedKey = '*'

export class SourceLimit {
  private readonly buckets = new Map<string, Bucket>()
  private readonly perMinute: number
  private readonly maxSources: number
  private readonly now: () => number
  private sweptAt = -Infinity

  constructor(options: SourceLimitOptions) {
    this.perMinute = options.perMinute
    this.maxSources = options.maxSources ?? 10_000
    this.now = options.now ?? Date.now
  }

  /** Spends one token for this source; false when it has none left (answer 429). */
  take(source: string): boolean {
    const bucket = this.bucketOf(source)
    this.refill(bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  /** Seconds until this source has a token again (for Retry-After). */
  retryAfterSeconds(source: string): number {
    const bucket = this.buckets.get(source) ?? this.buckets.get(sharedKey)
    if (!bucket) return 0
    this.refill(bucket)
    return bucket.tokens >= 1 ? 0 : Math.ceil(((1 - bucket.tokens) * 60) / this.perMinute)
  }

  get size(): number {
    return this.buckets.size
  }

  private refill(bucket: Bucket): void {
    const now = this.now()
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) * this.perMinute) / 60_000)
    bucket.at = now
  }

  private bucketOf(source: string): Bucket {
    const known = this.buckets.get(source)
    if (known) return known
    if (this.buckets.size >= this.maxSources) this.forgetRefilled()
    const key = this.buckets.size >= this.maxSources ? sharedKey : source
    let bucket = this.buckets.get(key)
    if (!bucket) {
      bucket = { tokens: this.perMinute, at: this.now() }
      this.buckets.set(key, bucket)
    }
    return bucket
  }

  private forgetRefilled(): void {
    // At most once a second: under a many-address flood, a sweep per request would cost more than the flood.
    if (this.now() - this.sweptAt < 1000) return
    this.sweptAt = this.now()
    for (const [key, bucket] of this.buckets) {
      this.refill(bucket)
      if (bucket.tokens >= this.perMinute && key !== sharedKey) this.buckets.delete(key)
    }
  }
}
