// Natural batching of one kind of database step: the first call is sent at once;
// calls made while a batch is being written wait and go together as the next
// batch. An idle dispatcher pays no delay; a busy one writes many steps in one
// transaction (one commit, one round trip) instead of one each.
//
// A batch that fails is retried one item at a time, so an item that raises
// (a bad argument) fails alone and the others get their own answers.

export type FlushBatch<I, O> = (items: I[]) => Promise<O[]>

interface Waiting<I, O> {
  item: I
  resolve(value: O): void
  reject(error: unknown): void
}

export class StepBatcher<I, O> {
  private waiting: Waiting<I, O>[] = []
  private flushing = false

  /**
   * @param flush writes the items in one transaction; answers in the items' order
   * @param maxBatch the most items written together
   */
  constructor(
    private readonly flush: FlushBatch<I, O>,
    private readonly maxBatch = 64
  ) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`StepBatcher: maxBatch must be a whole number >= 1, got ${maxBatch}`)
  }

  /** The item's answer, once the batch it went in is committed. */
  call(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject })
      if (!this.flushing) void this.drain()
    })
  }

  private async drain(): Promise<void> {
    this.flushing = true
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0, this.maxBatch)
        await this.write(batch)
      }
    } finally {
      this.flushing = false
    }
  }

  private async write(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const answers = await this.flush(batch.map((w) => w.item))
      if (answers.length !== batch.length) throw new Error(`a batch of ${batch.length} steps came back with ${answers.length} answers`)
      batch.forEach((w, i) => w.resolve(answers[i]!))
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error)
        return
      }
      // Nothing of the failed batch was committed: each item again, alone.
      for (const w of batch) {
        try {
          const [answer] = await this.flush([w.item])
          w.resolve(answer!)
        } catch (itemError) {
          w.reject(itemError)
        }
      }
    }
  }
}
