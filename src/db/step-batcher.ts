// Natural batching of one kind of database step: a step is sent at once when
// fewer than maxInFlight batches are being written; steps made while that many
// are being written wait and go together as the next batch. An idle dispatcher
// pays no delay; a busy one writes many steps in one transaction (one commit,
// one round trip) instead of one each.
//
// A batch that fails is retried one item at a time, so an item that raises
// (a bad argument) fails alone and the others get their own answers.

export type FlushBatch<I, O> = (items: I[]) => Promise<O[]>

interface Waiting<I, O> {
  item: I
  resolve(value: O): void
  reject(error: unknown): void
}

export interface StepBatcherOptions {
  /** The most items written together (default 64). */
  maxBatch?: number
  /**
   * Batches written at once (default 1). More than one lets PostgreSQL work on
   * several cores when steps come faster than one batch at a time can take them.
   */
  maxInFlight?: number
}

export class StepBatcher<I, O> {
  private waiting: Waiting<I, O>[] = []
  private inFlight = 0
  private readonly maxBatch: number
  private readonly maxInFlight: number

  /** @param flush writes the items in one transaction; answers in the items' order */
  constructor(
    private readonly flush: FlushBatch<I, O>,
    options: StepBatcherOptions = {}
  ) {
    this.maxBatch = options.maxBatch ?? 64
    this.maxInFlight = options.maxInFlight ?? 1
    for (const [name, value] of [
      ['maxBatch', this.maxBatch],
      ['maxInFlight', this.maxInFlight],
    ] as const) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`StepBatcher: ${name} must be a whole number >= 1, got ${value}`)
    }
  }

  /** The item's answer, once the batch it went in is committed. */
  call(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject })
      this.pump()
    })
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch)
      this.inFlight++
      void this.write(batch).finally(() => {
        this.inFlight--
        this.pump()
      })
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
