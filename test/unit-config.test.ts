// src/config/ as pure functions: no database, no process. Accounts are detected
// from the environment (1..N, no upper bound, gaps allowed, blank = absent);
// every refusal names its variable. (The retry backoff: unit-backoff.test.ts.)
import t from 'tap'
import { accountName, accountsFromEnv, keyFingerprint } from '../src/config/accounts.ts'
import { ConfigError, inputDeadlineMs, loadConfig } from '../src/config/index.ts'

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
  t.same(
    accounts.map((a) => [a.name, a.position, a.slots]),
    [
      ['primary', 1, 5],
      ['account_3', 3, 20],
      ['account_12', 12, 5],
    ]
  )
  t.ok(
    accounts.every((a) => /^sha256:[0-9a-f]{12}$/.test(a.fingerprint) && !a.fingerprint.includes(a.apiKey)),
    'fingerprints, never the key'
  )
  t.same(accountsFromEnv({}), [], 'no key, no account')
  t.same(
    accountsFromEnv({ RUNNINGHUB_API_KEY: key(1) }).map((a) => a.slots),
    [3],
    'three slots by default'
  )
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
  t.match(config, {
    http: { host: '127.0.0.1', port: 8080 },
    publicBaseUrl: 'https://rhpool.example.com',
    runningHubBaseUrl: 'https://www.runninghub.ai',
    dispatcher: { heartbeatIntervalMs: 5000, heartbeatStaleAfter: 3 },
  })
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
  t.equal(
    loadConfig({ ...env, RHPOOL_DISPATCHER: 'false', RUNNINGHUB_API_KEY: undefined, PUBLIC_BASE_URL: undefined }).dispatcher.enabled,
    false,
    'a webhook-only process needs no key and no public URL'
  )
})

t.test("accounts: keys are trimmed, limits on key length and slots are inclusive, _1 slots are primary's", async (t) => {
  t.same(
    accountsFromEnv({ RUNNINGHUB_API_KEY: `  ${key(1)}\n` }).map((a) => a.apiKey),
    [key(1)],
    'surrounding whitespace trimmed'
  )
  t.same(
    accountsFromEnv({ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS: '2', RUNNINGHUB_SLOTS_1: '7' }).map((a) => a.slots),
    [7],
    'RUNNINGHUB_SLOTS_1 overrides for primary'
  )
  t.same(
    accountsFromEnv({ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS: '  ' }).map((a) => a.slots),
    [3],
    'blank RUNNINGHUB_SLOTS: the default'
  )
  t.same(
    accountsFromEnv({ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS: ' 10000 ' }).map((a) => a.slots),
    [10000],
    '10000 slots, spaces trimmed'
  )
  t.throws(() => accountsFromEnv({ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS: '10001' }), {
    name: 'ConfigError',
    variable: 'RUNNINGHUB_SLOTS',
    message: /from 1 to 10000.*got "10001"/,
  })
  for (const slots of ['1.5', '-1', '1e3', '0x10']) {
    t.throws(
      () => accountsFromEnv({ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_SLOTS: slots }),
      { name: 'ConfigError', variable: 'RUNNINGHUB_SLOTS' },
      `slots ${slots} refused`
    )
  }
  t.same(accountsFromEnv({ RUNNINGHUB_API_KEY: 'k'.repeat(8) }).length, 1, 'an 8-character key')
  t.same(accountsFromEnv({ RUNNINGHUB_API_KEY: 'k'.repeat(256) }).length, 1, 'a 256-character key')
  t.throws(
    () => accountsFromEnv({ RUNNINGHUB_API_KEY: 'k'.repeat(7) }),
    { name: 'ConfigError', variable: 'RUNNINGHUB_API_KEY' },
    '7 characters refused'
  )
  t.throws(
    () => accountsFromEnv({ RUNNINGHUB_API_KEY: 'k'.repeat(257) }),
    { name: 'ConfigError', variable: 'RUNNINGHUB_API_KEY' },
    '257 characters refused'
  )
  t.throws(
    () => accountsFromEnv({ RUNNINGHUB_API_KEY: key(1), RUNNINGHUB_API_KEY_5: ` ${key(1)} ` }),
    { name: 'ConfigError', variable: 'RUNNINGHUB_API_KEY_5', message: /same key as account primary/ },
    'a duplicate hidden by whitespace is still a duplicate'
  )
  t.throws(() => accountsFromEnv({ RUNNINGHUB_API_KEY_2: key(2), RUNNINGHUB_API_KEY_3: key(2) }), {
    name: 'ConfigError',
    variable: 'RUNNINGHUB_API_KEY_3',
    message: /same key as account account_2/,
  })
  t.throws(() => accountsFromEnv({ RUNNINGHUB_API_KEY_2: key(2), RUNNINGHUB_SLOTS_1: '3' }), {
    name: 'ConfigError',
    variable: 'RUNNINGHUB_SLOTS_1',
    message: /RUNNINGHUB_API_KEY is not: there is no account primary/,
  })
  t.same(
    accountsFromEnv({ RUNNINGHUB_API_KEY_2: key(2) }).map((a) => [a.name, a.position]),
    [['account_2', 2]],
    'no primary: fine, account_2 alone'
  )
})

t.test('accounts: names and fingerprints', async (t) => {
  t.equal(accountName(1), 'primary')
  t.equal(accountName(2), 'account_2')
  t.equal(accountName(40), 'account_40')
  t.equal(keyFingerprint(key(1)), keyFingerprint(key(1)), 'the same key, the same fingerprint')
  t.not(keyFingerprint(key(1)), keyFingerprint(key(2)), 'another key, another fingerprint')
  t.equal(keyFingerprint('abc'), 'sha256:ba7816bf8f01', 'the first 12 hex digits of the SHA-256')
})

const production = {
  DATABASE_URL: 'postgres://rhpool@db.example.com:5432/app',
  RUNNINGHUB_API_KEY: key(1),
  WEBHOOK_SECRET: 's'.repeat(32),
  PUBLIC_BASE_URL: 'https://rhpool.example.com',
}

t.test('loadConfig: every default', async (t) => {
  const config = loadConfig(production)
  t.same(config, {
    databaseUrl: production.DATABASE_URL,
    accounts: accountsFromEnv(production),
    runningHubBaseUrl: 'https://www.runninghub.ai',
    publicBaseUrl: 'https://rhpool.example.com',
    webhookSecret: production.WEBHOOK_SECRET,
    http: { host: '127.0.0.1', port: 8080, adminHost: '127.0.0.1', adminPort: 8081, enabled: true, invalidDeliveriesPerMinute: 20 },
    dispatcher: {
      enabled: true,
      maxConcurrentSubmissions: 32,
      heartbeatIntervalMs: 5000,
      heartbeatStaleAfter: 3,
      pollIntervalMs: 2000,
      inputs: { maxBytes: 30 * 1024 * 1024, deadlineMs: null, allowPrivate: false },
      requestTimeoutMs: 30_000,
      confirmCallbacks: true,
      retryBaseMs: 2000,
      retryMaxMs: 120_000,
      maintenanceIntervalMs: 15_000,
      queueFoldIntervalMs: 1_000,
    },
    logLevel: 'info',
  })
  t.same(
    loadConfig({ ...production, PORT: '', ADMIN_PORT: '  ', RHPOOL_HTTP: '', LOG_LEVEL: undefined }).http,
    { host: '127.0.0.1', port: 8080, adminHost: '127.0.0.1', adminPort: 8081, enabled: true, invalidDeliveriesPerMinute: 20 },
    'blank reads as unset'
  )
})

t.test('loadConfig: flags take true/false, 1/0, yes/no in any case', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['true', true],
    ['TRUE', true],
    [' yes ', true],
    ['1', true],
    ['false', false],
    ['No', false],
    ['0', false],
  ]
  for (const [value, expected] of cases) {
    t.equal(
      loadConfig({ ...production, RHPOOL_CONFIRM_CALLBACKS: value }).dispatcher.confirmCallbacks,
      expected,
      `RHPOOL_CONFIRM_CALLBACKS=${JSON.stringify(value)}`
    )
  }
  t.equal(loadConfig({ ...production, RHPOOL_ALLOW_PRIVATE_INPUTS: 'yes' }).dispatcher.inputs.allowPrivate, true)
  t.equal(loadConfig({ ...production, RHPOOL_HTTP: 'FALSE' }).http.enabled, false)
  for (const variable of ['RHPOOL_CONFIRM_CALLBACKS', 'RHPOOL_DISPATCHER', 'RHPOOL_ALLOW_PRIVATE_INPUTS']) {
    t.throws(() => loadConfig({ ...production, [variable]: 'on' }), {
      name: 'ConfigError',
      variable,
      problem: 'must be true or false',
      message: `${variable} must be true or false`,
    })
  }
})

t.test('loadConfig: whole numbers within bounds, inclusive; anything else named', async (t) => {
  t.equal(loadConfig({ ...production, RHPOOL_POLL_INTERVAL_MS: '50' }).dispatcher.pollIntervalMs, 50, 'the minimum')
  t.equal(loadConfig({ ...production, RHPOOL_POLL_INTERVAL_MS: ' 600000 ' }).dispatcher.pollIntervalMs, 600_000, 'the maximum, trimmed')
  t.equal(loadConfig({ ...production, PORT: '0', ADMIN_PORT: '0' }).http.port, 0, 'port 0 (any free port), both listeners')
  const refusals: Array<[string, string, string]> = [
    ['RHPOOL_POLL_INTERVAL_MS', '49', 'must be a whole number from 50 to 600000'],
    ['RHPOOL_POLL_INTERVAL_MS', '600001', 'must be a whole number from 50 to 600000'],
    ['RHPOOL_MAX_CONCURRENT_SUBMISSIONS', '0', 'must be a whole number from 1 to 1000'],
    ['RHPOOL_REQUEST_TIMEOUT_MS', '2.5', 'must be a whole number from 100 to 600000'],
    ['PORT', '-1', 'must be a whole number from 0 to 65535'],
    ['ADMIN_PORT', '8o81', 'must be a whole number from 0 to 65535'],
    ['RHPOOL_WEBHOOK_INVALID_PER_MINUTE', '1e3', 'must be a whole number from 1 to 100000'],
    ['RHPOOL_MAINTENANCE_INTERVAL_MS', '999', 'must be a whole number from 1000 to 3600000'],
    ['RHPOOL_QUEUE_FOLD_INTERVAL_MS', '99', 'must be a whole number from 100 to 600000'],
  ]
  for (const [variable, value, problem] of refusals) {
    t.throws(
      () => loadConfig({ ...production, [variable]: value }),
      { name: 'ConfigError', variable, problem, message: `${variable} ${problem}` },
      `${variable}=${value}`
    )
  }
})

t.test('the input deadline is half the lease (the database setting), at most a minute, a set one cut to fit', async (t) => {
  t.equal(loadConfig(production).dispatcher.inputs.deadlineMs, null, 'unset: decided against the lease the database holds')
  t.equal(loadConfig({ ...production, RHPOOL_INPUT_DEADLINE_MS: '0' }).dispatcher.inputs.deadlineMs, null, '0 means the default')
  t.equal(loadConfig({ ...production, RHPOOL_INPUT_DEADLINE_MS: '20000' }).dispatcher.inputs.deadlineMs, 20_000)
  t.equal(inputDeadlineMs(120, null), 60_000, 'the 120 s lease: a minute')
  t.equal(inputDeadlineMs(60, null), 30_000)
  t.equal(inputDeadlineMs(3600, null), 60_000, 'a long lease: still a minute')
  t.equal(inputDeadlineMs(10, 30_000), 5_000, 'a set deadline the lease cannot cover is cut to half the lease')
  t.throws(() => loadConfig({ ...production, RHPOOL_LEASE_SECONDS: '60' }), {
    name: 'ConfigError',
    variable: 'RHPOOL_LEASE_SECONDS',
    message: /database setting lease_seconds/,
  })
})

t.test('loadConfig: listeners, URLs, secrets, strategy and log level', async (t) => {
  t.throws(() => loadConfig({ ...production, PORT: '9000', ADMIN_PORT: '9000' }), {
    name: 'ConfigError',
    variable: 'ADMIN_PORT',
    message: /must differ from PORT \(9000\)/,
  })
  t.equal(
    loadConfig({ ...production, PORT: '9000', ADMIN_PORT: '9000', ADMIN_HOST: '10.0.0.5' }).http.adminPort,
    9000,
    'the same port on another host'
  )
  t.equal(
    loadConfig({ ...production, PORT: '9000', ADMIN_PORT: '9000', RHPOOL_HTTP: 'false' }).http.enabled,
    false,
    'no listeners: no clash'
  )
  t.equal(
    loadConfig({ ...production, RUNNINGHUB_BASE_URL: 'https://www.runninghub.cn//' }).runningHubBaseUrl,
    'https://www.runninghub.cn',
    'trailing slashes dropped'
  )
  t.equal(
    loadConfig({ ...production, PUBLIC_BASE_URL: ' https://rhpool.example.com/hooks/ ' }).publicBaseUrl,
    'https://rhpool.example.com/hooks',
    'trimmed, trailing slash dropped'
  )
  t.equal(
    loadConfig({ ...production, RHPOOL_DISPATCHER: 'false', PUBLIC_BASE_URL: undefined, HOST: '0.0.0.0', PORT: '9090' }).publicBaseUrl,
    'http://0.0.0.0:9090',
    'webhook only, no public URL: its own address'
  )
  for (const value of ['www.runninghub.ai', 'ftp://www.runninghub.ai', 'not a url']) {
    t.throws(
      () => loadConfig({ ...production, RUNNINGHUB_BASE_URL: value }),
      { name: 'ConfigError', variable: 'RUNNINGHUB_BASE_URL' },
      `RUNNINGHUB_BASE_URL=${value}`
    )
  }
  t.throws(() => loadConfig({ ...production, PUBLIC_BASE_URL: 'rhpool.example.com' }), {
    name: 'ConfigError',
    variable: 'PUBLIC_BASE_URL',
    message: /must be a URL/,
  })
  t.equal(loadConfig({ ...production, DATABASE_URL: 'postgresql://u:p@h/db' }).databaseUrl, 'postgresql://u:p@h/db', 'postgresql:// too')
  t.throws(
    () => loadConfig({ ...production, DATABASE_URL: '   ' }),
    { name: 'ConfigError', variable: 'DATABASE_URL', message: /^DATABASE_URL is required/ },
    'blank reads as unset'
  )
  t.equal(loadConfig({ ...production, WEBHOOK_SECRET: 'x'.repeat(32) }).webhookSecret.length, 32, 'a 32-character secret')
  t.throws(() => loadConfig({ ...production, WEBHOOK_SECRET: 'x'.repeat(31) }), {
    name: 'ConfigError',
    variable: 'WEBHOOK_SECRET',
    message: /at least 32 characters/,
  })
  t.throws(() => loadConfig({ ...production, WEBHOOK_SECRET: undefined }), {
    name: 'ConfigError',
    variable: 'WEBHOOK_SECRET',
    message: /^WEBHOOK_SECRET is required/,
  })
  t.throws(
    () => loadConfig({ ...production, WEBHOOK_SECRET: undefined, RHPOOL_DISPATCHER: 'false' }),
    { name: 'ConfigError', variable: 'WEBHOOK_SECRET' },
    'a webhook-only process needs it too'
  )
  t.throws(() => loadConfig({ ...production, PUBLIC_BASE_URL: undefined }), {
    name: 'ConfigError',
    variable: 'PUBLIC_BASE_URL',
    message: /^PUBLIC_BASE_URL is required/,
  })
  t.equal(loadConfig({ ...production, LOG_LEVEL: 'silent' }).logLevel, 'silent')
  t.throws(() => loadConfig({ ...production, LOG_LEVEL: 'verbose' }), {
    name: 'ConfigError',
    variable: 'LOG_LEVEL',
    message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
  })
  t.same(
    loadConfig({ ...production, RUNNINGHUB_API_KEY_2: key(2), RUNNINGHUB_SLOTS_2: '5' }).accounts.map((a) => [a.name, a.slots]),
    [
      ['primary', 3],
      ['account_2', 5],
    ],
    'accounts come from the same environment'
  )
  t.throws(
    () => loadConfig({ ...production, RUNNINGHUB_SLOTS: 'many' }),
    { name: 'ConfigError', variable: 'RUNNINGHUB_SLOTS' },
    "accounts' refusals come through"
  )
})

t.test('ConfigError: the variable, the problem, and a message of both', async (t) => {
  const error = new ConfigError('PORT', 'must be a whole number from 0 to 65535')
  t.equal(error.name, 'ConfigError')
  t.equal(error.variable, 'PORT')
  t.equal(error.problem, 'must be a whole number from 0 to 65535')
  t.equal(error.message, 'PORT must be a whole number from 0 to 65535')
  t.ok(error instanceof Error)
})
