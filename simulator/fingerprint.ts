import { createHash } from 'node:crypto'

/**
 * A short, stable label for an API key: enough to tell keys apart in a ledger or a log,
 * never enough to use one. Everything the simulator prints or exposes goes through this.
 */
export function fingerprint(apiKey: string): string {
  const digest = createHash('sha256').update(apiKey).digest('hex').slice(0, 8)
  return `${apiKey.slice(0, 4)}…${digest}`
}
