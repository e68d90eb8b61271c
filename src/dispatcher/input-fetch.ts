// Fetching an input file that must be uploaded to RunningHub (most inputs are
// passed to RunningHub as URLs and never fetched here). The URL is a client's
// word, so every hop is checked before any byte is sent:
//  * the host is resolved here and the connection made to the address that
//    was checked (net.connect's `lookup`), so a DNS answer that changes between
//    check and connect (rebinding) cannot reach a private address;
//  * IP literals (which net.connect never looks up) are checked the same way;
//  * redirects are followed by hand, at most three, each hop checked again;
//  * the body is streamed against a byte cap (nothing beyond it is kept) and
//    the whole transfer, hops included, has one deadline: idle timers alone
//    let a server that trickles a byte a second hold a claim forever.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { isIP, type LookupFunction } from 'node:net'
import { basename } from 'node:path'
import { Agent, request } from 'undici'
import { forbiddenAddressReason } from './input-address.ts'
import { InputTransferError } from './input-error.ts'

export const maxRedirects = 3

export interface InputFetchPolicy {
  maxBytes: number
  /** For the whole transfer, redirects included; shorter than the claim's lease (read per download when a function). */
  deadlineMs: number | (() => number)
  /** RHPOOL_ALLOW_PRIVATE_INPUTS: unsafe, for tests and local development on 127.0.0.1 only. */
  allowPrivate: boolean
  /** The address rule (default forbiddenAddressReason); tests widen it to stand in for a public server. */
  forbidden?: (address: string) => string | null
  /** DNS (default dns.lookup); tests replace it to play a rebinding resolver. */
  resolve?: typeof dnsLookup
}

export interface FetchedInput {
  blob: Blob
  fileName: string
}

export type InputFetcher = (url: string, field: string) => Promise<FetchedInput>

/** A hop refused by the address rule; raised inside the socket's lookup, before any connection. */
class ForbiddenAddressError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string
  ) {
    super(`${host} is at ${address}, not a public address (${reason})`)
    this.name = 'ForbiddenAddressError'
  }
}

function guardedLookup(forbidden: (address: string) => string | null, resolve: typeof dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...(options as LookupOptions), all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0)
      const list = addresses as unknown as LookupAddress[]
      if (list.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0)
      // One bad address refuses the host: a name that mixes public and private answers is not an input server.
      for (const { address } of list) {
        const reason = forbidden(address)
        if (reason) return callback(new ForbiddenAddressError(hostname, address, reason), '', 0)
      }
      if ((options as LookupOptions).all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list)
      else callback(null, list[0]!.address, list[0]!.family)
    })
  }
}

function forbiddenIn(error: unknown): ForbiddenAddressError | null {
  for (let e = error as { cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (e instanceof ForbiddenAddressError) return e
  }
  return null
}

function parseHop(url: string, field: string): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new InputTransferError('bad_request', 'INVALID_INPUT_URL', `${field} is not a URL: ${JSON.stringify(url.slice(0, 200))}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InputTransferError('bad_request', 'INVALID_INPUT_URL', `${field} must be an http(s) URL, got ${parsed.protocol}`)
  }
  return parsed
}

const refused = (field: string, why: string) =>
  new InputTransferError('bad_request', 'INVALID_INPUT_URL', `${field} was refused: ${why} (inputs are fetched from public addresses only)`)

export function createInputFetcher(policy: InputFetchPolicy): InputFetcher {
  const forbidden = policy.allowPrivate ? () => null : (policy.forbidden ?? forbiddenAddressReason)
  const agent = new Agent({ keepAliveTimeout: 4_000, connect: { lookup: guardedLookup(forbidden, policy.resolve ?? dnsLookup) } })
  const { maxBytes } = policy

  return async (url, field) => {
    const deadlineMs = typeof policy.deadlineMs === 'function' ? policy.deadlineMs() : policy.deadlineMs
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), deadlineMs)
    try {
      let current = parseHop(url, field)
      for (let hop = 0; ; hop++) {
        // net.connect does not look up an IP literal, so it is checked here.
        const literal = current.hostname.replace(/^\[|\]$/g, '')
        const literalReason = isIP(literal) ? forbidden(literal) : null
        if (literalReason) throw refused(field, `${hop ? `redirect ${hop} to ` : ''}${literal} is not a public address (${literalReason})`)
        let response
        try {
          response = await request(current, {
            method: 'GET',
            dispatcher: agent,
            signal: deadline.signal,
            headersTimeout: deadlineMs,
            bodyTimeout: deadlineMs,
          })
        } catch (error) {
          const denied = forbiddenIn(error)
          if (denied) throw refused(field, `${hop ? `redirect ${hop}: ` : ''}${denied.message}`)
          throw error
        }
        // Bodies abandoned below are destroyed, which emits an error nobody else waits for; reads still see theirs.
        response.body.on('error', () => undefined)
        const location = response.headers.location
        if (response.statusCode >= 300 && response.statusCode < 400 && typeof location === 'string') {
          response.body.destroy()
          if (hop >= maxRedirects)
            throw new InputTransferError('bad_request', 'INPUT_DOWNLOAD_FAILED', `${field} redirected more than ${maxRedirects} times`)
          current = parseHop(new URL(location, current).href, field)
          continue
        }
        if (response.statusCode < 200 || response.statusCode >= 300) {
          response.body.destroy()
          const cls = response.statusCode >= 500 || response.statusCode === 429 ? 'transient' : 'bad_request'
          throw new InputTransferError(cls, 'INPUT_DOWNLOAD_FAILED', `${field} could not be downloaded: HTTP ${response.statusCode}`)
        }
        const declared = Number(response.headers['content-length'] ?? 0)
        if (declared > maxBytes) {
          response.body.destroy()
          throw new InputTransferError('bad_request', 'INPUT_TOO_LARGE', `${field} is ${declared} bytes, over the ${maxBytes}-byte limit`)
        }
        const chunks: Buffer[] = []
        let size = 0
        for await (const chunk of response.body) {
          size += (chunk as Buffer).length
          if (size > maxBytes) {
            response.body.destroy()
            throw new InputTransferError('bad_request', 'INPUT_TOO_LARGE', `${field} is over the ${maxBytes}-byte limit`)
          }
          chunks.push(chunk as Buffer)
        }
        const type = String(response.headers['content-type'] ?? 'application/octet-stream')
        // Blob copies the parts: at most the cap, held once more for the upload.
        return { blob: new Blob(chunks as unknown as BlobPart[], { type }), fileName: basename(current.pathname) || 'input' }
      }
    } catch (error) {
      if (error instanceof InputTransferError) throw error
      if (deadline.signal.aborted) {
        throw new InputTransferError('transient', 'INPUT_DOWNLOAD_FAILED', `${field} did not finish downloading within ${deadlineMs} ms`)
      }
      throw new InputTransferError('transient', 'INPUT_DOWNLOAD_FAILED', `${field} could not be downloaded: ${(error as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
  }
}
