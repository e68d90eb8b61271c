// RunningHub accounts from the environment.
//
// RUNNINGHUB_API_KEY is account `primary`; RUNNINGHUB_API_KEY_<n> (n = 2, 3,
// … with no upper bound) is `account_<n>`. Empty or blank values mean "not
// configured". Slots: RUNNINGHUB_SLOTS (default 3) for every account,
// overridden per account by RUNNINGHUB_SLOTS_<n> (`_1` is primary).
import { createHash } from 'node:crypto'
import { ConfigError } from './errors.ts'

export interface AccountConfig {
  name: string
  /** 1 for primary, n for account_n: the order fill-first uses. */
  position: number
  slots: number
  /** The secret. Held in memory only; never logged, stored or returned. */
  apiKey: string
  /** A short, irreversible tag that lets an operator tell keys apart. */
  fingerprint: string
}

const keyVariable = /^RUNNINGHUB_API_KEY(?:_(\d+))?$/
const slotsVariable = /^RUNNINGHUB_SLOTS(?:_(\d+))?$/
export const defaultSlots = 3
const maxSlots = 10000

export function keyFingerprint(apiKey: string): string {
  return `sha256:${createHash('sha256').update(apiKey).digest('hex').slice(0, 12)}`
}

export function accountName(position: number): string {
  return position === 1 ? 'primary' : `account_${position}`
}

function parseSlots(variable: string, raw: string): number {
  const value = raw.trim()
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > maxSlots) {
    throw new ConfigError(
      variable,
      `must be a whole number from 1 to ${maxSlots} (tasks this account may run at once), got ${JSON.stringify(raw)}`
    )
  }
  return Number(value)
}

export function accountsFromEnv(env: NodeJS.ProcessEnv): AccountConfig[] {
  const keys = new Map<number, string>()
  const slotOverrides = new Map<number, number>()
  let slotsForAll = defaultSlots

  for (const [variable, raw] of Object.entries(env)) {
    if (raw === undefined || raw.trim() === '') continue
    const keyMatch = keyVariable.exec(variable)
    if (keyMatch) {
      const position = keyMatch[1] === undefined ? 1 : Number(keyMatch[1])
      if (keyMatch[1] !== undefined && (position < 2 || String(position) !== keyMatch[1])) {
        throw new ConfigError(
          variable,
          'account numbers start at 2 and have no leading zeros (RUNNINGHUB_API_KEY is the first account, then RUNNINGHUB_API_KEY_2, _3, …)'
        )
      }
      const key = raw.trim()
      if (/\s/.test(key) || key.length < 8 || key.length > 256) {
        throw new ConfigError(variable, 'does not look like a RunningHub API key (8-256 characters, no spaces)')
      }
      keys.set(position, key)
      continue
    }
    const slotsMatch = slotsVariable.exec(variable)
    if (slotsMatch) {
      const slots = parseSlots(variable, raw)
      if (slotsMatch[1] === undefined) slotsForAll = slots
      else slotOverrides.set(Number(slotsMatch[1]), slots)
    }
  }

  for (const position of slotOverrides.keys()) {
    if (!keys.has(position)) {
      const keyVar = position === 1 ? 'RUNNINGHUB_API_KEY' : `RUNNINGHUB_API_KEY_${position}`
      throw new ConfigError(
        `RUNNINGHUB_SLOTS_${position}`,
        `is set but ${keyVar} is not: there is no account ${accountName(position)} to give slots to`
      )
    }
  }

  const seen = new Map<string, number>()
  return [...keys.entries()]
    .sort(([a], [b]) => a - b)
    .map(([position, apiKey]) => {
      const name = accountName(position)
      const duplicate = seen.get(apiKey)
      if (duplicate !== undefined) {
        throw new ConfigError(
          position === 1 ? 'RUNNINGHUB_API_KEY' : `RUNNINGHUB_API_KEY_${position}`,
          `holds the same key as account ${accountName(duplicate)}: one account's limit would be counted twice`
        )
      }
      seen.set(apiKey, position)
      return { name, position, apiKey, slots: slotOverrides.get(position) ?? slotsForAll, fingerprint: keyFingerprint(apiKey) }
    })
}
