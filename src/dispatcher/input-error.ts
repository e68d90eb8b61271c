import type { AnswerClass } from '../runninghub/classify.ts'

/** Why an input could not be made ready; the class says what happens to the job. */
export class InputTransferError extends Error {
  constructor(
    readonly cls: AnswerClass,
    readonly code: string,
    message: string
  ) {
    super(message)
    this.name = 'InputTransferError'
  }
}
