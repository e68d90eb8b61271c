// Confirms held callbacks (RHPOOL_CONFIRM_CALLBACKS) in any process that has
// the RunningHub keys: the dispatcher, and a webhook-only process started with
// the keys, so a callback it holds is checked even when no dispatcher runs.
// Woken by NOTIFY rhpool_confirm, with a poll as the backstop (a notification
// is only a hint, lost with a connection or a database restart).
//
// A callback this process's own webhook route receives, plainly for its job's
// attempt, on an account whose recorded key this process holds, is handed over
// directly (ClaimHandOver): the route holds it already leased to this process
// and passes it here, so no notification and no claiming transaction stand
// between the callback and its confirmation. Only while this confirmer is
// idle, though: when confirmations are already going on, a callback is held
// the ordinary way, and the next round takes all that came meanwhile at once
// (one claiming transaction for many, and the steps after it batched), as the
// submission steps batch what comes while one is being written.
import type { AccountConfig, Config } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import { jobLabel, type Logger } from '../log.ts'
import type { RunningHubClient } from '../runninghub/client.ts'
import { CallbackConfirmations, postponeUnconfirmed, type HeldKey, type UnconfirmedCallback } from '../db/rhpool.ts'
import { confirmHeldCallback, parallelQueries, processConfirmations, type ConfirmationOptions } from './confirmations.ts'
import { Rounds } from './rounds.ts'

// Rounds may overlap (claim_unconfirmed hands each held callback to one round), so a callback
// arriving during a round is asked about at once rather than after it: the confirmation is part
// of every job's time in its slot. Bounded, so a storm stays a few rounds.
const overlappingRounds = 3

/** What the webhook route hands a callback to when this process can confirm it (rhpool.hand_over_claim). */
export interface ClaimHandOver {
  /** The keys this process can confirm with now; none while it is stopping or already confirming. */
  keysTaking(): HeldKey[]
  /** The lease a handed-over callback is held with: longer than one query can take. */
  readonly leaseSeconds: number
  /** A callback the route held leased to this process, committed: confirm it. */
  take(held: UnconfirmedCallback): void
}

export interface ConfirmerOptions {
  sql: Sql
  client: () => RunningHubClient
  accounts: () => Map<string, AccountConfig>
  log: Logger
  config: Config
}

export class Confirmer implements ClaimHandOver {
  readonly leaseSeconds: number
  private started = false
  private stopping = false
  private timer: NodeJS.Timeout | null = null
  private unlisten: (() => Promise<void>) | null = null
  private readonly rounds: Rounds
  private readonly confirmation: ConfirmationOptions
  private readonly handed: UnconfirmedCallback[] = []
  private readonly handedWorkers = new Set<Promise<void>>()

  constructor(private readonly options: ConfirmerOptions) {
    const { sql, log, config } = options
    // A claim is this process's for longer than one query can take.
    const leaseSeconds = config.dispatcher.requestTimeoutMs / 1000 + 5
    const retrySeconds = 1
    const confirmations = new CallbackConfirmations(sql, retrySeconds)
    this.leaseSeconds = leaseSeconds
    this.confirmation = { leaseSeconds, retrySeconds, confirmations }
    this.rounds = new Rounds(
      async () => {
        await processConfirmations(sql, options.client(), options.accounts(), log, this.confirmation)
      },
      () => this.stopping,
      (error) => log.error({ err: error.message }, 'confirmation round failed'),
      overlappingRounds
    )
  }

  async start(): Promise<void> {
    const subscription = await this.options.sql.listen(
      'rhpool_confirm',
      () => this.rounds.run(),
      () => this.rounds.run()
    )
    this.unlisten = subscription.unlisten
    this.timer = setInterval(() => this.rounds.run(), this.options.config.dispatcher.pollIntervalMs)
    this.timer.unref()
    this.started = true
  }

  keysTaking(): HeldKey[] {
    if (!this.started || this.stopping || this.handed.length > 0 || this.handedWorkers.size > 0 || this.rounds.busy) return []
    return [...this.options.accounts().values()].map(({ name, fingerprint }) => ({ name, fingerprint }))
  }

  take(held: UnconfirmedCallback): void {
    this.handed.push(held)
    while (this.handedWorkers.size < parallelQueries && this.handed.length > 0) {
      const worker: Promise<void> = this.confirmHanded().finally(() => this.handedWorkers.delete(worker))
      this.handedWorkers.add(worker)
    }
  }

  private async confirmHanded(): Promise<void> {
    const { sql, log } = this.options
    for (let held = this.handed.shift(); held; held = this.handed.shift()) {
      try {
        if (this.stopping) {
          // Not asked about yet: give the lease back, so another process confirms it now rather than after the lease.
          await postponeUnconfirmed(sql, held.delivery_id, 0)
          continue
        }
        await confirmHeldCallback(sql, this.options.client(), this.options.accounts(), log, this.confirmation, held)
      } catch (error) {
        // The lease runs out and any process's round takes the callback.
        log.error({ job: jobLabel(held.job_table, held.job_id), err: (error as Error).message }, 'confirming a callback failed; will retry')
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearInterval(this.timer)
    await this.rounds.idle()
    while (this.handedWorkers.size > 0) await Promise.allSettled([...this.handedWorkers])
    await this.unlisten?.().catch(() => {})
  }
}
