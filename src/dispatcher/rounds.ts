// A job run at most `width` at a time, however often it is asked for: a
// request while all are busy makes exactly one more run after one ends.
export class Rounds {
  private readonly running = new Set<Promise<void>>()
  private again = false

  constructor(
    private readonly job: () => Promise<void>,
    private readonly stopped: () => boolean,
    private readonly failed: (error: Error) => void,
    private readonly width = 1
  ) {}

  run(): void {
    if (this.stopped()) return
    if (this.running.size >= this.width) {
      this.again = true
      return
    }
    const run: Promise<void> = (async () => {
      do {
        this.again = false
        try {
          await this.job()
        } catch (error) {
          this.failed(error as Error)
        }
      } while (this.again && !this.stopped())
    })().finally(() => {
      this.running.delete(run)
    })
    this.running.add(run)
  }

  /** A run is going on now. */
  get busy(): boolean {
    return this.running.size > 0
  }

  async idle(): Promise<void> {
    await Promise.allSettled([...this.running])
  }
}
