// Confirms held callbacks (RHPOOL_CONFIRM_CALLBACKS) in any process that has
// the RunningHub keys: the dispatcher, and a webhook-only process started with
// the keys, so a callback it holds is checked even when no dispatcher runs.
// Woken by NOTIFY rhpool_confirm, with a poll as the backstop (a notification
// is only a hint, lost with a connection or a database restart).
import type { AccountConfig, Config } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import type { Logger } from '../log.ts'
import type { RunningHubClient } from '../runninghub/client.ts'
import { CallbackConfirmations } from '../db/rhpool.ts'
import { processConfirmations } from './confirmations.ts'
import { Rounds } from './rounds.ts'

// Rounds may overlap (claim_unconfirmed hands each held callback to one round), so a callback
// arriving during a round is asked about at once rather than after it: the confirmation is part
// of every job's time in its slot. Bounded, so a storm stays a few rounds.
const overlappingRounds = 3

export interface ConfirmerOptions {
  sql: Sql
  client: () => RunningHubClient
  accounts: () => Map<string, AccountConfig>
  log: Logger
  config: Config
}

export class Confirmer {
  private stopping = false
  private timer: NodeJS.Timeout | null = null
  private unlisten: (() => Promise<void>) | null = null
  private readonly rounds: Rounds

  constructor(private readonly options: ConfirmerOptions) {
    const { sql, log, config } = options
    // A claim is this process's for longer than one query can take.
    const leaseSeconds = config.dispatcher.requestTimeoutMs / 1000 + 5
    const retrySeconds = 1
    const confirmations = new CallbackConfirmations(sql, retrySeconds)
    this.rounds = new Rounds(
      async () => {
        await processConfirmations(sql, options.client(), options.accounts(), log, { leaseSeconds, retrySeconds, confirmations })
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
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearInterval(this.timer)
    await this.rounds.idle()
    await this.unlisten?.().catch(() => {})
  }
}
