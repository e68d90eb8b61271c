// The input policy, against real servers: private addresses are refused on
// every hop before a connection is made (the target counts its connections),
// a body over the cap is cut off early, a trickling server meets the deadline.
import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { lookup as dnsLookup } from 'node:dns'
import { createInputFetcher, type InputFetchPolicy } from '../src/dispatcher/input-fetch.ts'
import { forbiddenAddressReason } from '../src/dispatcher/input-address.ts'
import { InputTransferError } from '../src/dispatcher/input-error.ts'
import { inputDeadlineMs, loadConfig } from '../src/config/index.ts'

interface Counted {
  url: string
  port: number
  connections: number
  requests: string[]
  bytesSent: number
}

/** A server on `host` that counts TCP connections (not requests: a refused hop must not even connect). */
async function serve(t: Test, host: string, handler: (req: IncomingMessage, res: ServerResponse, self: Counted) => void): Promise<Counted> {
  const self: Counted = { url: '', port: 0, connections: 0, requests: [], bytesSent: 0 }
  const server = createServer((req, res) => {
    self.requests.push(req.url ?? '/')
    handler(req, res, self)
  })
  server.on('connection', () => self.connections++)
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  self.port = (server.address() as AddressInfo).port
  self.url = `http://${host}:${self.port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  )
  return self
}

// 127.0.0.2 stands in for a public server: the production rule, widened by that one address only.
const standInPublic = '127.0.0.2'
const strict: InputFetchPolicy = {
  maxBytes: 1024 * 1024,
  deadlineMs: 5_000,
  allowPrivate: false,
  forbidden: (address) => (address === standInPublic ? null : forbiddenAddressReason(address)),
}

async function refusal(t: Test, promise: Promise<unknown>): Promise<InputTransferError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e
  )
  t.ok(error instanceof InputTransferError, `refused with an InputTransferError (${(error as Error)?.message})`)
  return error as InputTransferError
}

t.test('the address rule: loopback, private, link-local (metadata), unique-local, unspecified are refused; public is not', async (t) => {
  for (const address of [
    '127.0.0.1',
    '10.0.0.5',
    '172.16.3.4',
    '192.168.1.1',
    '169.254.169.254',
    '0.0.0.0',
    '100.64.0.1',
    '::1',
    '::',
    'fd12::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:a9fe:a9fe',
  ]) {
    t.ok(forbiddenAddressReason(address), `${address}: ${forbiddenAddressReason(address)}`)
  }
  for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111'])
    t.equal(forbiddenAddressReason(address), null, `${address} is public`)
})

t.test('a URL to 127.0.0.1 is refused without a connection to it', async (t) => {
  const target = await serve(t, '127.0.0.1', (_req, res) => res.end('secret'))
  const fetchInput = createInputFetcher(strict)
  const error = await refusal(t, fetchInput(`${target.url}/latest/meta-data`, 'input_url'))
  t.match(error, {
    cls: 'bad_request',
    code: 'INVALID_INPUT_URL',
    message: /input_url was refused: 127\.0\.0\.1 is not a public address \(loopback\)/,
  })
  const byName = await refusal(t, fetchInput(`http://localhost:${target.port}/x.png`, 'input_url'))
  t.match(
    byName,
    { code: 'INVALID_INPUT_URL', message: /localhost is at (127\.0\.0\.1|::1), not a public address \(loopback\)/ },
    'a name is resolved here and its address checked'
  )
  for (const [url, pattern] of [
    [`http://[::1]:${target.port}/x`, /::1 is not a public address \(loopback\)/],
    [`http://2130706433:${target.port}/x`, /127\.0\.0\.1 is not a public address \(loopback\)/], // WHATWG URL reads a bare number as IPv4
    [`http://0x7f.1:${target.port}/x`, /127\.0\.0\.1 is not a public address \(loopback\)/],
    [`http://0.0.0.0:${target.port}/x`, /0\.0\.0\.0 is not a public address \(unspecified\)/],
    [
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      /169\.254\.169\.254 is not a public address \(link-local, the cloud metadata service among them\)/,
    ],
    ['http://[fd00::1]/x', /fd00::1 is not a public address \(unique-local\)/],
    ['http://10.0.0.1/x', /10\.0\.0\.1 is not a public address \(private\)/],
  ] as const) {
    const error = await refusal(t, fetchInput(url, 'input_url'))
    t.match(error, { code: 'INVALID_INPUT_URL', message: pattern }, url)
  }
  t.equal(target.connections, 0, 'the target saw no connection')
})

t.test('a redirect from an allowed server onto 127.0.0.1 is refused at that hop, without a connection to the target', async (t) => {
  const target = await serve(t, '127.0.0.1', (_req, res) => res.end('secret'))
  const redirector = await serve(t, standInPublic, (req, res) => {
    const to = req.url === '/by-name' ? `http://localhost:${target.port}/x` : req.url === '/hop' ? '/to-target' : `${target.url}/x`
    res.writeHead(302, { location: to }).end()
  })
  const fetchInput = createInputFetcher(strict)
  const literal = await refusal(t, fetchInput(`${redirector.url}/to-target`, 'input_url'))
  t.match(literal, { code: 'INVALID_INPUT_URL', message: /redirect 1 to 127\.0\.0\.1 is not a public address \(loopback\)/ })
  const twoHops = await refusal(t, fetchInput(`${redirector.url}/hop`, 'input_url'))
  t.match(twoHops, { code: 'INVALID_INPUT_URL', message: /redirect 2 to 127\.0\.0\.1/ }, 'checked again at the second hop')
  const byName = await refusal(t, fetchInput(`${redirector.url}/by-name`, 'input_url'))
  t.match(byName, { code: 'INVALID_INPUT_URL', message: /redirect 1: localhost is at/ })
  t.ok(redirector.requests.length >= 3, 'the allowed server was asked')
  t.equal(target.connections, 0, 'the target saw no connection')
})

t.test('DNS rebinding: the connection goes to the address that was checked, not to a second answer', async (t) => {
  const target = await serve(t, '127.0.0.1', (_req, res) => res.end('secret'))
  let lookups = 0
  // First answer: the allowed stand-in; any later answer: the loopback target. A checker that
  // resolved once to check and let the socket resolve again would connect to the target.
  const resolve = ((host: string, options: object, callback: (e: Error | null, a: unknown) => void) => {
    lookups++
    callback(null, [{ address: lookups === 1 ? standInPublic : '127.0.0.1', family: 4 }])
  }) as unknown as typeof dnsLookup
  const fetchInput = createInputFetcher({ ...strict, resolve })
  const error = await refusal(t, fetchInput(`http://rebind.test:${target.port}/x.png`, 'input_url'))
  // 127.0.0.2 has nothing on the target's port: the connection to the checked address is refused.
  t.match(error, { code: 'INPUT_DOWNLOAD_FAILED', message: /ECONNREFUSED/ })
  t.equal(lookups, 1, 'one resolution, and the socket used it')
  t.equal(target.connections, 0, 'the target saw no connection')
})

t.test('more than three redirects are refused', async (t) => {
  const loop = await serve(t, standInPublic, (req, res) => res.writeHead(302, { location: `/again${req.url}` }).end())
  const error = await refusal(t, createInputFetcher(strict)(`${loop.url}/x`, 'input_url'))
  t.match(error, { code: 'INPUT_DOWNLOAD_FAILED', message: /redirected more than 3 times/ })
  t.equal(loop.requests.length, 4, 'the first request and three redirects')
})

t.test('a body over the cap is refused early: nothing past the cap is read', async (t) => {
  const chunk = Buffer.alloc(64 * 1024, 1)
  const endless = await serve(t, standInPublic, (_req, res, self) => {
    res.writeHead(200, { 'content-type': 'image/png' })
    // Chunked, no content-length: the cap can only be enforced while streaming.
    const pump = () => {
      while (!res.destroyed && self.bytesSent < 512 * 1024 * 1024) {
        self.bytesSent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
    }
    res.on('close', () => undefined)
    pump()
  })
  const before = process.memoryUsage().rss
  const error = await refusal(t, createInputFetcher(strict)(`${endless.url}/huge.png`, 'input_url'))
  t.match(error, { cls: 'bad_request', code: 'INPUT_TOO_LARGE', message: /over the 1048576-byte limit/ })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.ok(
    endless.bytesSent < 16 * 1024 * 1024,
    `the server got to send ${(endless.bytesSent / 1024 / 1024).toFixed(1)} MB of its 512 MB before the connection was cut`
  )
  t.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'memory stayed bounded')

  const declared = await serve(t, standInPublic, (_req, res) => {
    res.writeHead(200, { 'content-length': String(100 * 1024 * 1024) })
    res.write(chunk)
  })
  const early = await refusal(t, createInputFetcher(strict)(`${declared.url}/big.mp4`, 'video_url'))
  t.match(
    early,
    { code: 'INPUT_TOO_LARGE', message: /video_url is 104857600 bytes, over the 1048576-byte limit/ },
    'a declared length over the cap is refused before the body'
  )
})

t.test('a server that trickles one byte a second is cut off at the total deadline', async (t) => {
  const trickle = await serve(t, standInPublic, (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/png' })
    const timer = setInterval(() => res.write('x'), 1_000)
    res.on('close', () => clearInterval(timer))
  })
  const started = Date.now()
  const error = await refusal(t, createInputFetcher({ ...strict, deadlineMs: 1_500 })(`${trickle.url}/slow.png`, 'input_url'))
  const elapsed = Date.now() - started
  t.match(error, { cls: 'transient', code: 'INPUT_DOWNLOAD_FAILED', message: /input_url did not finish downloading within 1500 ms/ })
  t.ok(elapsed >= 1_400 && elapsed < 4_000, `refused after ${elapsed} ms (the deadline, though bytes kept coming)`)
})

t.test('an ordinary download under the cap works, and the allowance is named and explicit', async (t) => {
  const files = await serve(t, '127.0.0.1', (_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end('png bytes'))
  const refused = await refusal(t, createInputFetcher({ ...strict, forbidden: undefined })(`${files.url}/a.png`, 'input_url'))
  t.match(refused, { code: 'INVALID_INPUT_URL' }, 'the default policy refuses 127.0.0.1')
  const fetched = await createInputFetcher({ ...strict, forbidden: undefined, allowPrivate: true })(`${files.url}/dir/a.png`, 'input_url')
  t.equal(fetched.fileName, 'a.png')
  t.equal(fetched.blob.type, 'image/png')
  t.equal(await fetched.blob.text(), 'png bytes', 'RHPOOL_ALLOW_PRIVATE_INPUTS=true reaches the local file server')
})

t.test(
  'the input policy from the environment: 30 MB cap, deadline inside the lease, private addresses refused unless allowed by name',
  async (t) => {
    const base = { DATABASE_URL: 'postgres://u@localhost/db', WEBHOOK_SECRET: 'x'.repeat(32), RHPOOL_DISPATCHER: 'false' }
    t.same(
      loadConfig(base).dispatcher.inputs,
      { maxBytes: 30 * 1024 * 1024, deadlineMs: null, allowPrivate: false },
      "defaults: RunningHub's cap, a deadline from the lease, no private addresses"
    )
    // The lease is the database's lease_seconds setting; the deadline follows it at run time.
    t.equal(inputDeadlineMs(120, null), 60_000, 'unset: a minute with the 120 s lease')
    t.equal(inputDeadlineMs(10, null), 5_000, 'unset: half a short lease')
    t.equal(inputDeadlineMs(10, 10_000), 5_000, 'a deadline the lease cannot cover is cut to half the lease')
    t.equal(inputDeadlineMs(120, 2_000), 2_000, 'a shorter one is kept')
    t.throws(
      () => loadConfig({ ...base, RHPOOL_LEASE_SECONDS: '10' }),
      { name: 'ConfigError', message: /RHPOOL_LEASE_SECONDS.*database setting lease_seconds/ },
      'the lease is no longer configured per process'
    )
    t.equal(loadConfig({ ...base, RHPOOL_ALLOW_PRIVATE_INPUTS: 'true' }).dispatcher.inputs.allowPrivate, true)
    t.throws(() => loadConfig({ ...base, RHPOOL_INPUT_MAX_BYTES: '0' }), { message: /RHPOOL_INPUT_MAX_BYTES/ })
  }
)
