// A job run one at a time, however often it is asked for: a request during a
// run makes exactly one more run after it.
export class SingleFlight {
  private current: Promise<void> | null = null
  private again = false

  constructor(
    private readonly job: () => Promise<void>,
    private readonly stopped: () => boolean,
    private readonly failed: (error: Error) => void
  ) {}

  run(): void {
    if (this.stopped()) return
    if (this.current) {
      this.again = true
      return
    }
    this.current = (async () => {
      do {
        this.again = false
        try {
          await this.job()
        } catch (error) {
          this.failed(error as Error)
        }
      } while (this.again && !this.stopped())
    })().finally(() => {
      this.current = null
    })
  }

  idle(): Promise<void> {
    return this.current ?? Promise.resolve()
  }
}
