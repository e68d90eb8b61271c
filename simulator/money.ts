// Balances are kept in integer cents so repeated debits never drift (0.1 + 0.2 problems).

export function toCents(money: string | number): number {
  const value = typeof money === 'number' ? money : Number.parseFloat(money)
  if (!Number.isFinite(value)) throw new TypeError(`not an amount of money: ${String(money)}`)
  return Math.round(value * 100)
}

export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : ''
  const abs = Math.abs(cents)
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`
}

/**
 * What a task costs, deterministic from its planned duration so tests can predict it:
 * 0.05 per task plus 0.01 per whole second; coins are the same figure in cents.
 */
export function taskCost(durationMs: number): { cents: number; coins: number; seconds: number } {
  const seconds = Math.max(1, Math.ceil(durationMs / 1000))
  const cents = 5 + Math.floor(durationMs / 1000)
  return { cents, coins: cents, seconds }
}
