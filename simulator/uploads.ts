import { createHash } from 'node:crypto'
import { extname } from 'node:path'
import type { Account } from './accounts.ts'
import type { MultipartUpload } from './multipart.ts'

/** RunningHub refuses uploads over 30 MB. */
export const uploadLimitBytes = 30 * 1024 * 1024

export interface StoredUpload {
  fileName: string
  hash: string
  mediaType: 'image' | 'video' | 'audio' | 'file'
  size: number
}

/**
 * Names an uploaded file as RunningHub does — classic `api/<hash>.<ext>` (sample 6), v2
 * `openapi/<hash>.<ext>` (sample 5) — and remembers which key uploaded it (checked only
 * with the uploadsPerKey option).
 */
export function storeUpload(account: Account, file: NonNullable<MultipartUpload['file']>, prefix: 'api' | 'openapi'): StoredUpload {
  const hash = createHash('sha256').update(file.bytes).digest('hex')
  const ext = (extname(file.name).slice(1) || 'png').toLowerCase().replace(/[^a-z0-9]/g, '') || 'png'
  const fileName = `${prefix}/${hash}.${ext}`
  account.uploads.add(fileName)
  const major = file.type.split('/')[0]
  const mediaType = major === 'image' || major === 'video' || major === 'audio' ? major : 'file'
  return { fileName, hash, mediaType, size: file.bytes.length }
}
