// `rhpool start` (= `npm start`) is the production command: it takes the
// environment as it is. A missing key, secret, public URL or database stops it
// with exit 2 naming the variable — never a simulator, an embedded database or
// a random secret (those are `rhpool dev` and `rhpool demo`). Several
// instances may start, and migrate, at the same moment.
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { loadConfig } from '../src/config/index.ts'
import { projectRoot } from '../src/db/migrate.ts'
import { freePort, freePorts } from '../src/localdb/cluster.ts'
import { rhpool } from './helpers/cli.ts'
import { freshDatabase } from './helpers/db.ts'
import { testSecret } from './helpers/system.ts'

const productionEnv = (databaseUrl: string, port: number): Record<string, string> => ({
  DATABASE_URL: databaseUrl,
  RUNNINGHUB_API_KEY: 'rh-key-production-0001',
  // Nothing answers here: these tests never reach RunningHub, and never a real host.
  RUNNINGHUB_BASE_URL: 'http://127.0.0.1:9',
  WEBHOOK_SECRET: testSecret,
  PUBLIC_BASE_URL: 'https://rhpool.example.com',
  PORT: String(port),
  // Any free port: several of these run at once.
  ADMIN_PORT: '0',
  LOG_LEVEL: 'info',
})

t.test('a production start with a required variable missing exits 2 naming it, and fills nothing in', async (t) => {
  const { url } = await freshDatabase(t)
  const port = await freePort()
  const cases: Array<[string, RegExp]> = [
    ['DATABASE_URL', /DATABASE_URL is required/],
    ['RUNNINGHUB_API_KEY', /RUNNINGHUB_API_KEY is required/],
    ['WEBHOOK_SECRET', /WEBHOOK_SECRET is required/],
    ['PUBLIC_BASE_URL', /PUBLIC_BASE_URL is required/],
  ]
  for (const [variable, message] of cases) {
    const env = productionEnv(url, port)
    delete env[variable]
    const run = await rhpool(['start'], env)
    t.equal(run.code, 2, `without ${variable}: exit 2`)
    t.match(run.stderr, message, `without ${variable}: the message names it`)
    t.notMatch(
      run.stdout + run.stderr,
      /simulator|embedded|random/i,
      `without ${variable}: no simulator, embedded database or random secret`
    )
  }
  const short = await rhpool(['start'], { ...productionEnv(url, port), WEBHOOK_SECRET: 'too-short' })
  t.equal(short.code, 2)
  t.match(short.stderr, /WEBHOOK_SECRET must be at least 32 characters/)
  const { PORT: _port, ...withoutPort } = productionEnv(url, port)
  t.equal(loadConfig(withoutPort).http.port, 8080, 'no PORT: 8080, as the README says')
})

t.test('start does not migrate: on a database without the schema it says what to run', async (t) => {
  const { url } = await freshDatabase(t, { template: null })
  const run = await rhpool(['start'], productionEnv(url, await freePort()))
  t.equal(run.code, 1)
  t.match(run.stderr, /no rhpool schema: run `npm run migrate`/)
})

t.test('start refuses a database a newer release migrated: exit 57, naming both releases', async (t) => {
  const { url, sql } = await freshDatabase(t)
  await sql`update rhpool.function_layer set release = '99.0.0'`
  const run = await rhpool(['start'], productionEnv(url, await freePort()))
  t.equal(run.code, 57)
  t.match(
    run.stderr,
    /rhpool: rhpool \S+ will not start on this database: the database's function layer was applied by rhpool 99\.0\.0 .*newer than this release/
  )
})

t.test('two `rhpool migrate` at once on an empty database: both succeed', async (t) => {
  const { url, sql } = await freshDatabase(t, { template: null })
  const runs = await Promise.all([rhpool(['migrate'], { DATABASE_URL: url }, 120_000), rhpool(['migrate'], { DATABASE_URL: url }, 120_000)])
  t.same(
    runs.map((r) => r.code),
    [0, 0],
    `both exit 0 (${runs.map((r) => r.stderr.trim().split('\n').pop()).join(' | ')})`
  )
  const [schema] =
    await sql`select to_regprocedure('rhpool.claim_account_slot(integer,text,integer,text,text[],timestamp with time zone)') is not null as ready`
  t.ok(schema!.ready, 'the schema is there')
})

t.test('two production starts at once against one database both come up and stop cleanly', async (t) => {
  const { url } = await freshDatabase(t)
  const ports = await freePorts(2)
  const children = ports.map((port) => {
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'rhpool.js'), 'start'], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '', ...productionEnv(url, port), RHPOOL_POLL_INTERVAL_MS: '200' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const output: string[] = []
    child.stdout.on('data', (c) => output.push(String(c)))
    child.stderr.on('data', (c) => output.push(String(c)))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    return { child, output, exited, port }
  })
  for (const { port, output, exited } of children) {
    let up = false
    let gone = false
    void exited.then(() => (gone = true))
    while (!up && !gone) {
      up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false
      )
      if (!up) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.ok(up, `the instance on port ${port} came up${up ? '' : `: ${output.join('').slice(-500)}`}`)
  }
  for (const { child } of children) child.kill('SIGTERM')
  t.same(await Promise.all(children.map((c) => c.exited)), [0, 0], 'both exit 0 on SIGTERM')
})
