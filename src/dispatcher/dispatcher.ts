// The dispatcher: claims jobs the moment a slot and a job meet, submits them,
// and gives everything back cleanly on stop.
//
// It wakes on NOTIFY (a job became claimable, a slot was freed) and also polls,
// because a notification is only a hint: it can be lost with a connection.
// postgres.js re-establishes LISTEN after a reconnect. Several dispatcher
// processes at once are safe: admission is decided in claim_account_slot().
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Config, AccountConfig } from '../config/index.ts'
import type { Sql } from '../db/connect.ts'
import type { Logger } from '../log.ts'
import type { Metrics } from '../metrics.ts'
import { RunningHubClient } from '../runninghub/client.ts'
import { processCancellations } from './cancellations.ts'
import { createInputFetcher, type InputFetcher } from './input-fetch.ts'
import { Confirmer } from './confirmer.ts'
import { Rounds } from './rounds.ts'
import { claimForDispatcher, slotFreeAmong, SubmissionSteps } from '../db/rhpool.ts'
import type { ToolDefinition } from '../tools/node-info.ts'
import { submitClaim, type HeldClaim, type JobRow } from './submit.ts'
import { Presence } from './presence.ts'
import { QueueFolder } from './queue-fold.ts'
import { LeaseSetting } from './lease.ts'

export interface DispatcherOptions {
  sql: Sql
  config: Config
  log: Logger
  metrics?: Metrics
}

export class Dispatcher {
  readonly holder = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`
  private readonly client: RunningHubClient
  private readonly fetchInput: InputFetcher
  private readonly steps: SubmissionSteps
  private readonly callbackConfirmer: Confirmer
  // Presence (presence.ts): the accounts this dispatcher holds the recorded key of; the only ones it claims on or uses a key for.
  private readonly presence: Presence
  // The queue's counts kept current for status reads (queue-fold.ts).
  private readonly queueFolder: QueueFolder
  private readonly lease: LeaseSetting
  private accounts = new Map<string, AccountConfig>()
  private readonly inFlight = new Set<Promise<unknown>>()
  private stopping = false
  private wakeUp: (() => void) | null = null
  private pendingWake = false
  // The last claim was held back by this process's own limit (maxConcurrentSubmissions): asked for
  // all it could take and got it, or could not ask. Only then does a submission ending here make
  // room for a claim; otherwise it was the accounts' slots or the queue that stopped it, and the
  // transition that frees a slot or queues a job wakes the dispatchers itself (NOTIFY rhpool_wakeup).
  private heldBackByCapacity = false
  // The last claim found nothing and none of this dispatcher's accounts has a slot no run holds
  // (rhpool.slot_free_among): a job entering the queue cannot change that, so its wake-up
  // ('queued') is not a reason to claim. Any other wake-up, and the poll, claim as always.
  private everySlotTaken = false
  private loop: Promise<void> | null = null
  private unlisten: Array<() => Promise<void>> = []
  private cancelTimer: NodeJS.Timeout | null = null
  listening = false

  constructor(private readonly options: DispatcherOptions) {
    this.client = new RunningHubClient(options.config.runningHubBaseUrl, options.config.dispatcher.requestTimeoutMs)
    this.steps = new SubmissionSteps(options.sql, Math.ceil(options.config.dispatcher.requestTimeoutMs / 1000))
    // Presence and lease: see presence.ts and lease.ts.
    const { dispatcher } = options.config
    this.queueFolder = new QueueFolder({ sql: options.sql, log: options.log, intervalMs: options.config.dispatcher.queueFoldIntervalMs })
    this.presence = new Presence({
      sql: options.sql,
      holder: this.holder,
      log: options.log,
      intervalMs: dispatcher.heartbeatIntervalMs,
      staleAfter: dispatcher.heartbeatStaleAfter,
      onUsable: (usable) => this.useAccounts(usable),
    })
    this.lease = new LeaseSetting(options.sql, options.log, dispatcher.inputs.deadlineMs)
    this.fetchInput = createInputFetcher({ ...dispatcher.inputs, deadlineMs: () => this.lease.inputDeadlineMs() })
    this.callbackConfirmer = new Confirmer({ ...options, client: () => this.client, accounts: () => this.accounts })
  }

  get runningHub(): RunningHubClient {
    return this.client
  }

  /** Confirms held callbacks (null with RHPOOL_CONFIRM_CALLBACKS off): the webhook route in this process hands it its own. */
  get confirmer(): Confirmer | null {
    return this.options.config.dispatcher.confirmCallbacks ? this.callbackConfirmer : null
  }

  get accountMap(): Map<string, AccountConfig> {
    return this.accounts
  }

  async start(): Promise<void> {
    const { sql, config, log } = this.options
    await this.lease.start(config.dispatcher.heartbeatIntervalMs)
    await this.reloadAccounts(config.accounts)
    this.presence.start()
    this.queueFolder.start()
    for (const channel of ['rhpool_wakeup', 'rhpool_cancel']) {
      const subscription = await sql.listen(
        channel,
        (payload) => (channel === 'rhpool_wakeup' ? this.wokenBy(payload) : this.cancels.run()),
        () => {
          // Called on every (re)connect: anything announced while we were away is found by the claim that follows.
          this.listening = true
          this.wake()
        }
      )
      this.unlisten.push(subscription.unlisten)
    }
    if (config.dispatcher.confirmCallbacks) await this.callbackConfirmer.start()
    this.loop = this.run()
    this.cancelTimer = setInterval(() => this.cancels.run(), config.dispatcher.pollIntervalMs)
    this.cancelTimer.unref()
    log.info(
      {
        holder: this.holder,
        accounts: config.accounts.map((a) => ({ name: a.name, slots: a.slots, key: a.fingerprint, held: this.accounts.has(a.name) })),
      },
      'dispatcher started'
    )
    if (config.dispatcher.inputs.allowPrivate) {
      log.warn(
        'RHPOOL_ALLOW_PRIVATE_INPUTS=true: input downloads may reach loopback, private and link-local addresses (the cloud metadata service among them); unsafe outside tests and local development'
      )
    }
  }

  /** Declares this dispatcher's keys and syncs their accounts (start, SIGHUP): a removed key is no longer held by this dispatcher. */
  async reloadAccounts(accounts: AccountConfig[]): Promise<void> {
    this.useAccounts(await this.presence.join(accounts))
  }

  private useAccounts(usable: Map<string, AccountConfig>): void {
    const grew = [...usable.keys()].some((name) => !this.accounts.has(name))
    this.accounts = usable
    if (grew) this.wake()
  }

  private wokenBy(payload: string): void {
    if (payload === 'queued' && this.everySlotTaken) return
    this.everySlotTaken = false
    this.wake()
  }

  private async everySlotIsTaken(): Promise<boolean> {
    const held = [...this.accounts.keys()]
    if (held.length === 0) return false
    try {
      return !(await slotFreeAmong(this.options.sql, held))
    } catch {
      // Unknown: claim on every wake-up, as if a slot were free.
      return false
    }
  }

  wake(): void {
    this.pendingWake = true
    this.wakeUp?.()
  }

  /** Stops claiming, lets submissions already on the wire finish and be recorded, releases the rest. */
  async stop(): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    this.wake()
    if (this.cancelTimer) clearInterval(this.cancelTimer)
    await this.loop
    await this.callbackConfirmer.stop()
    await this.queueFolder.stop()
    await Promise.allSettled([...this.inFlight, this.cancels.idle()])
    await this.presence.leave()
    await this.lease.stop()
    await Promise.allSettled(this.unlisten.map((u) => u()))
    await this.client.close()
    this.options.log.info({ holder: this.holder }, 'dispatcher stopped')
  }

  private async run(): Promise<void> {
    const { sql, config, log, metrics } = this.options
    let failures = 0
    while (!this.stopping) {
      this.pendingWake = false
      const capacity = config.dispatcher.maxConcurrentSubmissions - this.inFlight.size
      let claimed: HeldClaim[] = []
      if (capacity > 0) {
        try {
          const held = [...this.accounts.keys()]
          // Lease and strategy: null, so the settings decide (one value for every dispatcher); only the accounts this one holds keys for.
          // Claims a claim round (pg_cron) made for those accounts come first: they waited longest.
          claimed = await claimForDispatcher<JobRow, ToolDefinition>(sql, { maxJobs: capacity, holder: this.holder, accounts: held })
          failures = 0
        } catch (error) {
          failures++
          log.error({ err: (error as Error).message }, 'claim failed; retrying')
          await this.sleep(Math.min(10_000, 200 * 2 ** failures))
          continue
        }
      }
      this.heldBackByCapacity = capacity <= 0 || claimed.length === capacity
      if (capacity > 0) {
        metrics?.claimCalls.inc({ result: claimed.length > 0 ? 'claimed' : 'empty' })
        this.everySlotTaken = claimed.length === 0 && (await this.everySlotIsTaken())
      }
      for (const claim of claimed) {
        metrics?.claims.inc({ account: claim.api_account })
        this.track(claim)
      }
      if (claimed.length > 0 && claimed.length === capacity) continue
      if (!this.pendingWake) await this.sleep(config.dispatcher.pollIntervalMs)
    }
  }

  private track(claim: HeldClaim): void {
    const started = process.hrtime.bigint()
    const work = submitClaim(
      {
        sql: this.options.sql,
        steps: this.steps,
        config: this.options.config,
        client: this.client,
        fetchInput: this.fetchInput,
        log: this.options.log,
        metrics: this.options.metrics,
        holder: this.holder,
        accounts: this.accounts,
        isStopping: () => this.stopping,
      },
      claim
    )
      .then((result) => {
        if (result === 'running') this.options.metrics?.turnover.observe(Number(process.hrtime.bigint() - started) / 1e9)
      })
      .catch((error: Error) => {
        // The claim stays leased; maintenance returns it to the queue when the lease ends.
        this.options.log.error(
          { job: `${claim.job_table}/${claim.job_id}`, err: error.message },
          'submission crashed; the lease will recover the job'
        )
      })
      .finally(() => {
        this.inFlight.delete(work)
        if (this.heldBackByCapacity || this.stopping) this.wake()
      })
    this.inFlight.add(work)
  }

  // One cancellation round at a time, however many notifications arrive.
  private readonly cancels = new Rounds(
    async () => {
      await processCancellations(this.options.sql, this.client, this.accounts, this.options.log)
    },
    () => this.stopping,
    (error) => this.options.log.error({ err: error.message }, 'cancellation round failed')
  )

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.wakeUp = () => {
        this.wakeUp = null
        done()
      }
    })
  }
}
