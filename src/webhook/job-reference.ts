// The signed job reference carried in each task's webhook URL.
//
// RunningHub's callbacks are not signed, so the URL is: it names the job
// (table, id, attempt) and carries an HMAC of that name under WEBHOOK_SECRET.
// A callback with a valid signature finds its job even when the task id was
// never saved; one without changes nothing.
import { createHmac, timingSafeEqual } from 'node:crypto'

export interface JobReference {
  jobTable: string
  jobId: string
  attempt: number
}

export const webhookRoutePrefix = '/webhooks/runninghub'
const tablePattern = /^[a-z_][a-z0-9_]{0,62}$/
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

function sign(secret: string, ref: JobReference): string {
  return createHmac('sha256', secret).update(`rhpool/v1/${ref.jobTable}/${ref.jobId}/${ref.attempt}`).digest('base64url').slice(0, 32)
}

/** The path (below PUBLIC_BASE_URL) RunningHub is asked to call back. */
export function webhookPath(secret: string, ref: JobReference): string {
  return `${webhookRoutePrefix}/${ref.jobTable}/${ref.jobId}/${ref.attempt}/${sign(secret, ref)}`
}

export type VerifyResult = { ok: true; ref: JobReference } | { ok: false; reason: string }

/** Checks the parts of a webhook path; constant-time on the signature. */
export function verifyJobReference(
  secret: string,
  parts: { jobTable: string; jobId: string; attempt: string; signature: string }
): VerifyResult {
  if (!tablePattern.test(parts.jobTable)) return { ok: false, reason: 'the job table in the URL is not a table name' }
  if (!uuidPattern.test(parts.jobId)) return { ok: false, reason: 'the job id in the URL is not a uuid' }
  if (!/^[1-9]\d{0,3}$/.test(parts.attempt)) return { ok: false, reason: 'the attempt in the URL is not a positive number' }
  const ref = { jobTable: parts.jobTable, jobId: parts.jobId, attempt: Number(parts.attempt) }
  const expected = Buffer.from(sign(secret, ref))
  const given = Buffer.from(parts.signature)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'the signature does not match' }
  return { ok: true, ref }
}
