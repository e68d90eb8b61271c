// A task run every intervalMs, one run at a time: a tick that finds the last
// run still under way is skipped, not queued (a slow database makes the task
// run less often, never pile up). The timer never keeps the process alive.
// stop() clears it and waits for a run under way, so nothing of the task runs
// after stop() has returned. The task handles its own errors: a run that
// throws is reported to onError and the next tick runs as usual.
export class Periodic {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private stopped = false

  constructor(
    private readonly task: () => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (error: Error) => void = () => {}
  ) {
    if (!Number.isFinite(intervalMs) || intervalMs <= 0)
      throw new RangeError(`Periodic: intervalMs must be a number > 0, got ${intervalMs}`)
  }

  start(): void {
    if (this.timer || this.stopped) return
    this.timer = setInterval(() => void this.runNow(), this.intervalMs)
    this.timer.unref()
  }

  /** One run now, unless one is under way (then that one); nothing once stopped. */
  runNow(): Promise<void> {
    if (this.stopped) return this.running ?? Promise.resolve()
    this.running ??= this.task()
      .catch((error: unknown) => this.onError(error instanceof Error ? error : new Error(String(error))))
      .finally(() => {
        this.running = null
      })
    return this.running
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }
}
