// The README's first command, as a new user runs it: in a fresh copy of the
// project inside a private folder (mode 0700, like root's home), with no
// DATABASE_URL and no keys, twice in a row. Each run must say what is
// simulated and where its data lives, reach its summary, and leave nothing
// running; the second must not trip over the first one's rows.
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import postgres from 'postgres'
import { projectRoot } from '../src/db/migrate.ts'
import { freePort } from '../src/localdb/cluster.ts'
import { defaultDataDir } from '../src/localdb/embedded.ts'

const readmeCommand = 'bash scripts/install-system-deps && npm ci && npm run demo'

/** The project as a fresh clone has it: tracked files plus new ones not ignored (node_modules, .data stay behind). */
function copyProject(to: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: projectRoot,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean)
  for (const file of files) {
    mkdirSync(dirname(join(to, file)), { recursive: true })
    cpSync(join(projectRoot, file), join(to, file), { dereference: false, errorOnExist: false })
  }
}

function runShell(command: string, cwd: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c) => (output += String(c)))
    child.stderr.on('data', (c) => (output += String(c)))
    child.on('exit', (code) => resolve({ code, output }))
  })
}

t.test("the README's demo command, twice, in a fresh clone inside a mode-0700 folder", async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'rhpool-private-'))
  chmodSync(home, 0o700)
  const clone = join(home, 'rhpool')
  copyProject(clone)
  const dataDir = defaultDataDir(clone)
  t.teardown(() => {
    rmSync(home, { recursive: true, force: true })
    rmSync(dirname(dataDir), { recursive: true, force: true })
  })
  const port = await freePort()
  // What a person's shell has; the port only keeps this run apart from other tests running beside it.
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', RHPOOL_EMBEDDED_PORT: String(port) }

  for (const run of [1, 2]) {
    const { code, output } = await runShell(readmeCommand, clone, env)
    t.equal(code, 0, `run ${run}: exits 0${code === 0 ? '' : `\n${output.slice(-3000)}`}`)
    const demoLines = output.slice(output.indexOf('node bin/rhpool.js demo')).split('\n').slice(1, 4).join('\n')
    t.match(
      demoLines,
      new RegExp(
        `DATABASE_URL is not set: using the embedded PostgreSQL .*\\(data in ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`
      ),
      `run ${run}: its first lines say it uses its own database, and where the data lives`
    )
    t.match(
      demoLines,
      /using the RunningHub SIMULATOR .* two accounts of 3 slots .*nothing is paid/,
      `run ${run}: its first lines say plainly it is the simulator`
    )
    t.match(output, /progress 24\/24/, `run ${run}: every job finished`)
    t.match(output, /Summary/)
    t.match(output, /primary\s+│ \d+\s+│ \d+/, `run ${run}: jobs per account in the summary`)
    t.match(output, /account_2\s+│ \d+/)
    const probe = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, connect_timeout: 2, onnotice: () => {} })
    await t.rejects(probe`select 1`, `run ${run}: the embedded PostgreSQL was stopped`)
    await probe.end({ timeout: 1 })
    const left = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(dataDir) || line.includes(clone))
    t.same(left, [], `run ${run}: no process of the demo is left running (no server on its data, nothing in its folder)`)
  }
})
