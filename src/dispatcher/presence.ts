// Dispatcher presence: this dispatcher tells the database which accounts it
// holds a key for (names, fingerprints and slots, never the keys), on a
// heartbeat, and takes its presence away on a clean stop. An account takes
// work while some live dispatcher holds its recorded key
// (db/functions/120-dispatcher-presence.sql), so dispatchers with different
// key sets never disable one another's accounts, and each claims only where it
// holds the key (claim_account_slot's `accounts`).
//
// A key for a name whose recorded key another live dispatcher holds is a
// different RunningHub account: it is refused, loudly, and this dispatcher
// runs without that account until no live dispatcher holds the recorded key;
// then it records its own at the next heartbeat.
import type { AccountConfig } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import type { Logger } from '../log.ts'
import {
  dispatcherHeartbeat,
  dispatcherLeave,
  recordedFingerprints,
  underAdmissionLock,
  type DeclaredKey,
  type KeyState,
} from '../db/rhpool.ts'
import { syncAccounts } from './sync-accounts.ts'
import { Periodic } from '../periodic.ts'

export interface PresenceOptions {
  sql: Sql
  holder: string
  log: Logger
  intervalMs: number
  /** Stale after this many intervals without a heartbeat. */
  staleAfter: number
  /** Called with the accounts this dispatcher may use, whenever that set changes. */
  onUsable: (usable: Map<string, AccountConfig>) => void
}

export class Presence {
  private configured: AccountConfig[] = []
  private states = new Map<string, string>()
  private readonly heartbeats: Periodic

  constructor(private readonly options: PresenceOptions) {
    this.heartbeats = new Periodic(() => this.tick(), options.intervalMs)
  }

  private get staleSeconds(): number {
    return (this.options.intervalMs * this.options.staleAfter) / 1000
  }

  private keys(): DeclaredKey[] {
    return this.configured.map((a) => ({ name: a.name, fingerprint: a.fingerprint, slots: a.slots }))
  }

  /**
   * Declares these keys and syncs their accounts, in one transaction under the
   * admission lock. Accounts another live dispatcher holds with a different
   * key are left out of the sync (and refused with an error in the log).
   */
  async join(accounts: AccountConfig[]): Promise<Map<string, AccountConfig>> {
    this.configured = accounts
    const states = await underAdmissionLock(this.options.sql, async (tx) => {
      // Its own keys first: a key this dispatcher held before (a SIGHUP changed it) never counts against it.
      const before = await this.heartbeat(tx)
      const refused = new Set(before.filter((s) => s.state === 'other_key' && s.recorded_holders > 0).map((s) => s.account))
      await syncAccounts(
        tx,
        accounts.filter((a) => !refused.has(a.name))
      )
      return await this.heartbeat(tx)
    })
    return this.apply(states)
  }

  /** Heartbeats every interval until leave(). */
  start(): void {
    this.heartbeats.start()
  }

  /** A clean stop: this dispatcher holds nothing any more. */
  async leave(): Promise<void> {
    await this.heartbeats.stop()
    try {
      await dispatcherLeave(this.options.sql, this.options.holder)
    } catch (error) {
      // Its presence then lapses by itself after the staleness bound.
      this.options.log.warn({ err: (error as Error).message }, "could not remove this dispatcher's presence; it lapses by itself")
    }
  }

  private async tick(): Promise<void> {
    try {
      const states = await this.heartbeat(this.options.sql)
      // An account to create, or a name whose recorded key nobody live holds any more: sync again.
      if (states.some((s) => s.state === 'no_account' || (s.state === 'other_key' && s.recorded_holders === 0))) {
        this.options.onUsable(await this.join(this.configured))
        return
      }
      this.options.onUsable(this.apply(states))
    } catch (error) {
      // Missed beats make this dispatcher stale, and then its accounts stop taking work: the right outcome when it cannot reach the database.
      this.options.log.warn({ err: (error as Error).message }, 'heartbeat failed; will try again')
    }
  }

  private heartbeat(sql: Sql): Promise<KeyState[]> {
    return dispatcherHeartbeat(sql, this.options.holder, this.keys(), this.staleSeconds)
  }

  /** The accounts held with the recorded key; every change of state is logged once. */
  private apply(states: KeyState[]): Map<string, AccountConfig> {
    const { log, holder } = this.options
    const byName = new Map(this.configured.map((a) => [a.name, a]))
    const usable = new Map<string, AccountConfig>()
    for (const s of states) {
      const account = byName.get(s.account)
      if (!account) continue
      const summary = `${s.state}:${s.recorded_fingerprint}:${s.recorded_slots}`
      const changed = this.states.get(s.account) !== summary
      this.states.set(s.account, summary)
      if (s.state === 'held') {
        usable.set(s.account, account)
        if (changed && s.recorded_slots !== null && s.recorded_slots !== s.declared_slots) {
          log.warn(
            { account: s.account, slots: s.declared_slots, runsWith: s.recorded_slots },
            'another live dispatcher gives this account fewer slots: it runs with the lowest any holder declares'
          )
        }
      } else if (changed && s.state === 'other_key') {
        log.error(
          {
            holder,
            account: s.account,
            fingerprint: s.key_fingerprint,
            recordedFingerprint: s.recorded_fingerprint,
            holders: s.recorded_holders,
          },
          'refused: another live dispatcher holds a different key for this account name, and a different key is a different RunningHub account; ' +
            'not claiming on it until no live dispatcher holds the recorded key (give the new key its own number, RUNNINGHUB_API_KEY_<n>)'
        )
      }
    }
    return usable
  }
}

/**
 * For a process that uses keys without claiming (the webhook-only process that
 * confirms callbacks): of its configured accounts, those whose key is the one
 * recorded on the account, refreshed every intervalMs. A key that is not the
 * recorded one belongs to another RunningHub account, which knows none of
 * this account's tasks: asking it would refute true callbacks.
 */
export class RecordedKeys {
  private current = new Map<string, AccountConfig>()
  private refreshes: Periodic | null = null

  constructor(
    private readonly sql: Sql,
    private readonly log: Logger,
    private readonly configured: AccountConfig[]
  ) {}

  get accounts(): Map<string, AccountConfig> {
    return this.current
  }

  async start(intervalMs: number): Promise<void> {
    await this.refresh()
    this.refreshes = new Periodic(
      () => this.refresh(),
      intervalMs,
      (error) => this.log.warn({ err: error.message }, 'could not read the recorded keys; keeping the last list')
    )
    this.refreshes.start()
  }

  async stop(): Promise<void> {
    await this.refreshes?.stop()
  }

  private async refresh(): Promise<void> {
    const recorded = await recordedFingerprints(
      this.sql,
      this.configured.map((a) => a.name)
    )
    const next = new Map(this.configured.filter((a) => recorded.get(a.name) === a.fingerprint).map((a) => [a.name, a]))
    for (const a of this.configured) {
      if (this.current.has(a.name) && !next.has(a.name)) {
        this.log.warn(
          { account: a.name, fingerprint: a.fingerprint, recordedFingerprint: recorded.get(a.name) ?? null },
          "this process's key for the account is not the recorded one: not using it to confirm callbacks"
        )
      }
    }
    this.current = next
  }
}
