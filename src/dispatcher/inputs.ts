// Input files given as URLs are downloaded and uploaded to RunningHub with the
// key of the account that will run the job, right before submission: a file
// uploaded with one account's key is not visible to another.
import { Agent, interceptors, request } from 'undici'
import { basename } from 'node:path'
import type { AnswerClass } from '../runninghub/classify.ts'
import type { RunningHubClient } from '../runninghub/client.ts'

export const maxInputBytes = 200 * 1024 * 1024

// Storage links (signed URLs, CDNs) may redirect once or twice.
const downloads = new Agent({ keepAliveTimeout: 4_000 }).compose(interceptors.redirect({ maxRedirections: 3 }))

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

async function download(url: string, field: string, timeoutMs: number): Promise<{ blob: Blob; fileName: string }> {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InputTransferError('bad_request', 'INVALID_INPUT_URL', `${field} is not a URL: ${JSON.stringify(url.slice(0, 200))}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InputTransferError('bad_request', 'INVALID_INPUT_URL', `${field} must be an http(s) URL, got ${parsed.protocol}`)
  }
  let response
  try {
    response = await request(parsed, { method: 'GET', headersTimeout: timeoutMs, bodyTimeout: timeoutMs, dispatcher: downloads })
  } catch (error) {
    throw new InputTransferError('transient', 'INPUT_DOWNLOAD_FAILED', `${field} could not be downloaded: ${(error as Error).message}`)
  }
  if (response.statusCode >= 400) {
    await response.body.dump()
    const cls: AnswerClass = response.statusCode >= 500 || response.statusCode === 429 ? 'transient' : 'bad_request'
    throw new InputTransferError(cls, 'INPUT_DOWNLOAD_FAILED', `${field} could not be downloaded: HTTP ${response.statusCode}`)
  }
  const declared = Number(response.headers['content-length'] ?? 0)
  if (declared > maxInputBytes) {
    await response.body.dump()
    throw new InputTransferError('bad_request', 'INPUT_TOO_LARGE', `${field} is ${declared} bytes, over the ${maxInputBytes}-byte limit`)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length
    if (size > maxInputBytes) {
      response.body.destroy()
      throw new InputTransferError('bad_request', 'INPUT_TOO_LARGE', `${field} is over the ${maxInputBytes}-byte limit`)
    }
    chunks.push(chunk as Buffer)
  }
  const contentType = String(response.headers['content-type'] ?? 'application/octet-stream')
  return { blob: new Blob([Buffer.concat(chunks)], { type: contentType }), fileName: basename(parsed.pathname) || 'input' }
}

/** Downloads `url` and uploads it with `apiKey`; returns RunningHub's file name. */
export async function transferInput(client: RunningHubClient, apiKey: string, url: string, field: string, timeoutMs: number): Promise<string> {
  const file = await download(url, field, timeoutMs)
  const uploaded = await client.upload(apiKey, file.blob, file.fileName)
  if (uploaded.ok) return uploaded.value.fileName
  const cls: AnswerClass = uploaded.kind === 'unknown' ? 'transient' : uploaded.cls
  throw new InputTransferError(cls, uploaded.code, `uploading ${field} to RunningHub failed: ${uploaded.message}`)
}
