/**
 * Every timer the simulator sets goes through here so close() can cancel them all, and all
 * are unref'd so a forgotten simulator never keeps a process alive.
 */
export class Timers {
  private readonly handles = new Set<NodeJS.Timeout>()
  private readonly sleepers = new Set<(completed: boolean) => void>()
  private closed = false

  get isClosed(): boolean {
    return this.closed
  }

  after(ms: number, fn: () => void): void {
    if (this.closed) return
    const handle = setTimeout(
      () => {
        this.handles.delete(handle)
        if (!this.closed) fn()
      },
      Math.max(0, ms)
    )
    handle.unref()
    this.handles.add(handle)
  }

  /** Resolves true after ms, or false at once if the simulator closes first. */
  sleep(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false)
    return new Promise((resolve) => {
      const handle = setTimeout(
        () => {
          this.handles.delete(handle)
          this.sleepers.delete(resolve)
          resolve(true)
        },
        Math.max(0, ms)
      )
      handle.unref()
      this.handles.add(handle)
      this.sleepers.add(resolve)
    })
  }

  close(): void {
    this.closed = true
    for (const handle of this.handles) clearTimeout(handle)
    this.handles.clear()
    for (const wake of this.sleepers) wake(false)
    this.sleepers.clear()
  }
}
