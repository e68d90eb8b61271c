// The configuration and the retry backoff as pure functions: no database, no
// process. Accounts are detected from the environment (1..N, no upper bound,
// gaps allowed, blank = absent); every refusal names its variable.
import t from 'tap'
import { accountsFromEnv } from '../src/config/accounts.ts'
import { ConfigError, loadConfig } from '../src/config/index.ts'
import { retryDelayMs } from '../src/dispatcher/backoff.ts'

const key = (n: number) => `rh-key-${String(n).padStart(4, '0')}-abcdef`

t.test('accounts: RUNNINGHUB_API_KEY is primary, _n is account_n, in order, gaps and blanks allowed', async (t) => {
  const accounts = accountsFromEnv({
    RUNNINGHUB_API_KEY_12: key(12),
    RUNNINGHUB_API_KEY: key(1),
    RUNNINGHUB_API_KEY_3: key(3),
    RUNNINGHUB_API_KEY_2: '   ',
    RUNNINGHUB_SLOTS: '5',
    RUNNINGHUB_SLOTS_3: '20',
  })
  t.same(accounts.map((a) => [a.name, a.position, a.slots]), [['primary', 1, 5], ['account_3', 3, 20], ['account_12', 12, 5]])
  t.ok(accounts.every((a) => /^sha256:[0-9a-f]{12}$/.test(a.fingerprint) && !a.fingerprint.includes(a.apiKey)), 'fingerprints, never the key')
  t.same(accountsFromEnv({}), [], 'no key, no account')
  t.same(accountsFromEnv({ RUNNINGHUB_API_KEY: key(1) }).map((a) => a.slots), [3], 'three slots by default')
})

t.test('accounts: every refusal names its variable', async (t) => {
  const cases: Array<[NodeJS.ProcessEnv, string, RegExp]> = [
    [{ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_API_KEY_2: key(1) }, 'RUNNINGHUB_API_KEY_2', /same key as account primary/],
    [{ RUNNINGHUB_API_KEY_01: key(1) }, 'RUNNINGHUB_API_KEY_01', /no leading zeros/],
    [{ RUNNINGHUB_API_KEY_1: key(1) }, 'RUNNINGHUB_API_KEY_1', /start at 2/],
    [{ RUNNINGHUB_API_KEY: 'short' }, 'RUNNINGHUB_API_KEY', /does not look like a RunningHub API key/],
    [{ RUNNINGHUB_API_KEY: 'has a space inside' }, 'RUNNINGHUB_API_KEY', /no spaces/],
    [{ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS_2: '3' }, 'RUNNINGHUB_SLOTS_2', /RUNNINGHUB_API_KEY_2 is not/],
    [{ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS: '0' }, 'RUNNINGHUB_SLOTS', /whole number from 1 to 10000/],
    [{ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS_1: 'three' }, 'RUNNINGHUB_SLOTS_1', /whole number from 1 to 10000/],
  ]
  for (const [env, variable, message] of cases) {
    const error = (() => {
      try {
        accountsFromEnv(env)
      } catch (e) {
        return e
      }
      return null
    })()
    t.ok(error instanceof ConfigError, `${Object.keys(env).join(', ')}: refused`)
    t.equal((error as ConfigError).variable, variable, `names ${variable}`)
    t.match((error as ConfigError).message, message)
  }
})

t.test('loadConfig: a production configuration, and what it refuses', async (t) => {
  const env = {
    DATABASE_URL: 'postgres://rhpool@db.example.com:5432/app',
    RUNNINGHUB_API_KEY: key(1),
    WEBHOOK_SECRET: 'x'.repeat(32),
    PUBLIC_BASE_URL: 'https://rhpool.example.com/',
  }
  const config = loadConfig(env)
  t.match(config, { http: { host: '127.0.0.1', port: 8080 }, publicBaseUrl: 'https://rhpool.example.com', runningHubBaseUrl: 'https://www.runninghub.ai',
    dispatcher: { heartbeatIntervalMs: 5000, heartbeatStaleAfter: 3 } })
  t.ok(Object.isFrozen(config), 'frozen: read once')
  const refusals: Array<[Record<string, string | undefined>, string]> = [
    [{ DATABASE_URL: undefined }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ RUNNINGHUB_API_KEY: undefined }, 'RUNNINGHUB_API_KEY'],
    [{ WEBHOOK_SECRET: 'short' }, 'WEBHOOK_SECRET'],
    [{ PUBLIC_BASE_URL: 'ftp://x' }, 'PUBLIC_BASE_URL'],
    // The strategy and the lease are the database's settings (one value for every dispatcher): setting them here is refused.
    [{ RHPOOL_STRATEGY: 'spread' }, 'RHPOOL_STRATEGY'],
    [{ RHPOOL_LEASE_SECONDS: '120' }, 'RHPOOL_LEASE_SECONDS'],
    [{ RHPOOL_HEARTBEAT_STALE_AFTER: '1' }, 'RHPOOL_HEARTBEAT_STALE_AFTER'],
    [{ PORT: '70000' }, 'PORT'],
    [{ RHPOOL_RETRY_BASE_MS: '5000', RHPOOL_RETRY_MAX_MS: '1000' }, 'RHPOOL_RETRY_MAX_MS'],
    [{ RHPOOL_HTTP: 'maybe' }, 'RHPOOL_HTTP'],
  ]
  for (const [change, variable] of refusals) {
    t.throws(() => loadConfig({ ...env, ...change }), { name: 'ConfigError', variable }, `${JSON.stringify(change)} → ${variable}`)
  }
  t.equal(loadConfig({ ...env, RHPOOL_DISPATCHER: 'false', RUNNINGHUB_API_KEY: undefined, PUBLIC_BASE_URL: undefined }).dispatcher.enabled, false,
    'a webhook-only process needs no key and no public URL')
})

t.test('retry backoff: exponential in the attempt, capped, jittered between half and one and a half', async (t) => {
  t.equal(retryDelayMs(1, 1000, 60_000, () => 0.5), 1000)
  t.equal(retryDelayMs(4, 1000, 60_000, () => 0.5), 8000)
  t.equal(retryDelayMs(30, 1000, 60_000, () => 0.5), 60_000, 'capped')
  t.equal(retryDelayMs(3, 1000, 60_000, () => 0), 2000, 'half at the least')
  t.equal(retryDelayMs(3, 1000, 60_000, () => 0.999999), 6000, 'one and a half at the most')
  t.equal(retryDelayMs(0, 1000, 60_000, () => 0.5), 1000, 'an attempt below 1 counts as the first')
})
