// `rhpool start` is the production path: its process must never load the RunningHub simulator
// (simulator/), not even through another module. The child runs with a preload whose module hooks
// write down every URL resolved or loaded (test/helpers/record-modules.mjs); the list is read
// after a real start (up on /healthz, a few dispatcher rounds, SIGTERM). `dev`, `demo` and
// `simulate` load the simulator with import() inside their commands; a static import of it (or of
// src/cli/runtime.ts or demo.ts) anywhere on the start path makes this test fail. Type-only
// imports are erased and load nothing, so they are allowed.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { projectRoot } from '../src/db/migrate.ts'
import { freePort } from '../src/localdb/cluster.ts'
import { freshDatabase } from './helpers/db.ts'

const recorder = join(projectRoot, 'test', 'helpers', 'record-modules.mjs')
const simulatorDir = pathToFileURL(join(projectRoot, 'simulator')).href + '/'
const fileUrl = (path: string) => pathToFileURL(join(projectRoot, path)).href

interface Recorded {
  code: number | null
  output: string
  modules: Set<string>
}

/** Runs bin/rhpool.js with the recorder; given a port, waits for /healthz, lets it run, then SIGTERM. */
async function recordedRun(t: Test, args: string[], env: Record<string, string>, port?: number): Promise<Recorded> {
  const dir = mkdtempSync(join(tmpdir(), 'rhpool-modules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const log = join(dir, 'modules.txt')
  const child = spawn(process.execPath, [`--import=${pathToFileURL(recorder).href}`, join(projectRoot, 'bin', 'rhpool.js'), ...args], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', ...env, RHPOOL_MODULE_LOG: log },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (c) => (output += String(c)))
  child.stderr.on('data', (c) => (output += String(c)))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  if (port !== undefined) {
    let gone = false
    void exited.then(() => (gone = true))
    let up = false
    const deadline = Date.now() + 30_000
    while (!up && !gone && Date.now() < deadline) {
      up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false
      )
      if (!up) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.ok(up, `rhpool ${args.join(' ')} came up${up ? '' : `: ${output.slice(-800)}`}`)
    // Let the dispatcher and maintenance run a few rounds: a lazy import() on the start path shows too.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    child.kill('SIGTERM')
  }
  const code = await exited
  const modules = new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))
  return { code, output, modules }
}

t.test('rhpool start never loads the simulator, nor the dev/demo runtime', async (t) => {
  const { url } = await freshDatabase(t)
  const port = await freePort()
  const run = await recordedRun(
    t,
    ['start'],
    {
      DATABASE_URL: url,
      RUNNINGHUB_API_KEY: 'rh-key-production-0001',
      // Nothing answers here: never a real host.
      RUNNINGHUB_BASE_URL: 'http://127.0.0.1:9',
      WEBHOOK_SECRET: 'start-imports-secret-0123456789abcdef',
      PUBLIC_BASE_URL: 'https://rhpool.example.com',
      PORT: String(port),
      ADMIN_PORT: '0',
      RHPOOL_POLL_INTERVAL_MS: '200',
      LOG_LEVEL: 'warn',
    },
    port
  )
  t.equal(run.code, 0, `exit 0 on SIGTERM${run.code === 0 ? '' : `: ${run.output.slice(-800)}`}`)
  // The list is the start path's: the recorder saw the modules that run the service.
  for (const path of ['src/cli/main.ts', 'src/run-service.ts', 'src/service.ts', 'src/dispatcher/dispatcher.ts', 'src/webhook/route.ts']) {
    t.ok(run.modules.has(fileUrl(path)), `recorded ${path}`)
  }
  const simulator = [...run.modules].filter((m) => m.startsWith(simulatorDir))
  t.same(simulator, [], 'no module under simulator/ was resolved or loaded')
  for (const path of ['src/cli/runtime.ts', 'src/cli/demo.ts']) t.notOk(run.modules.has(fileUrl(path)), `${path} not loaded`)
})

t.test('the recorder does see the simulator when a command loads it', async (t) => {
  // Without this, an empty list above could mean the recorder saw nothing.
  const run = await recordedRun(t, ['simulate', '--help'], {})
  t.equal(run.code, 0)
  t.match(run.output, /usage: tsx simulator\/main\.ts/)
  t.ok(run.modules.has(`${simulatorDir}main.ts`), 'simulator/main.ts recorded')
  t.ok(run.modules.has(`${simulatorDir}index.ts`), 'simulator/index.ts recorded')
})
