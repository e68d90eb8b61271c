import { fingerprint } from './fingerprint.ts'
import { toCents } from './money.ts'
import type { AccountOptions, ApiKeyType } from './types.ts'

const apiKeyTypes: ReadonlySet<string> = new Set(['NORMAL', 'SHARED', 'EXCLUSIVE'])

export interface Account {
  /** The raw key lives only here, in memory, for lookups. */
  readonly apiKey: string
  readonly fingerprint: string
  concurrency: number
  /** Tasks that may wait QUEUED beyond the running ones. */
  queueDepth: number
  balanceCents: number
  coins: number
  apiKeyType: ApiKeyType
  /** Files uploaded with this key: RunningHub lets a key use only its own uploads. */
  readonly uploads: Set<string>
}

export class AccountBook {
  private readonly accounts = new Map<string, Account>()
  private readonly removed = new Map<string, Account>()

  /** Adds a key, or updates an existing one in place (its running tasks keep counting). */
  add(apiKey: string, options: AccountOptions = {}): Account {
    if (!apiKey) throw new TypeError('apiKey must be a non-empty string')
    const concurrency = options.concurrency ?? this.accounts.get(apiKey)?.concurrency ?? 3
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`)
    }
    if (options.apiKeyType !== undefined && !apiKeyTypes.has(options.apiKeyType)) {
      throw new RangeError(`apiKeyType must be NORMAL, SHARED or EXCLUSIVE, got ${options.apiKeyType}`)
    }
    const existing = this.accounts.get(apiKey)
    if (existing) {
      existing.concurrency = concurrency
      if (options.queueDepth !== undefined) existing.queueDepth = checkedDepth(options.queueDepth)
      if (options.balance !== undefined) existing.balanceCents = toCents(options.balance)
      if (options.coins !== undefined) existing.coins = Number(options.coins)
      if (options.apiKeyType !== undefined) existing.apiKeyType = options.apiKeyType
      return existing
    }
    const account: Account = {
      apiKey,
      fingerprint: fingerprint(apiKey),
      concurrency,
      queueDepth: checkedDepth(options.queueDepth ?? 0),
      balanceCents: toCents(options.balance ?? '100.00'),
      coins: Number(options.coins ?? 1000),
      apiKeyType: options.apiKeyType ?? 'NORMAL',
      uploads: this.removed.get(apiKey)?.uploads ?? new Set(),
    }
    this.accounts.set(apiKey, account)
    return account
  }

  get(apiKey: string | undefined): Account | undefined {
    return apiKey === undefined ? undefined : this.accounts.get(apiKey)
  }

  require(apiKey: string): Account {
    const account = this.accounts.get(apiKey)
    if (!account) throw new Error(`unknown account ${fingerprint(apiKey)}`)
    return account
  }

  remove(apiKey: string): boolean {
    const account = this.accounts.get(apiKey)
    if (!account) return false
    // Kept aside so a key added back finds its account (and its files) again.
    this.removed.set(apiKey, account)
    return this.accounts.delete(apiKey)
  }

  list(): Account[] {
    return [...this.accounts.values()]
  }
}

function checkedDepth(depth: number): number {
  if (!Number.isInteger(depth) || depth < 0) throw new RangeError(`queueDepth must be a whole number >= 0, got ${depth}`)
  return depth
}
