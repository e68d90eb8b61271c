// An input that must be uploaded (its registry entry says `"upload": true`) is
// fetched under the input policy (input-fetch.ts) and uploaded to RunningHub
// with the key of the account that will run the job, right before submission.
import type { AnswerClass } from '../runninghub/classify.ts'
import type { RunningHubClient } from '../runninghub/client.ts'
import { InputTransferError } from './input-error.ts'
import type { InputFetcher } from './input-fetch.ts'

export { InputTransferError } from './input-error.ts'

/** Fetches `url` and uploads it with `apiKey`; returns RunningHub's file name. `beforeUpload` renews the claim between the two. */
export async function transferInput(
  client: RunningHubClient,
  fetchInput: InputFetcher,
  apiKey: string,
  url: string,
  field: string,
  beforeUpload: () => Promise<void>
): Promise<string> {
  const file = await fetchInput(url, field)
  await beforeUpload()
  const uploaded = await client.upload(apiKey, file.blob, file.fileName)
  if (uploaded.ok) return uploaded.value.fileName
  const cls: AnswerClass = uploaded.kind === 'unknown' ? 'transient' : uploaded.cls
  throw new InputTransferError(cls, uploaded.code, `uploading ${field} to RunningHub failed: ${uploaded.message}`)
}
