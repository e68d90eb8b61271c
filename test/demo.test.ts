// The README's first command on embedded defaults: no DATABASE_URL, no keys.
// It must say so, run the workload to its summary, and leave nothing running.
import t from 'tap'
import { mkdtempSync, existsSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { freePort } from '../src/localdb/cluster.ts'
import { rhpool } from './helpers/cli.ts'

t.test('rhpool demo: embedded PostgreSQL + simulator, workload, summary, clean exit', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'rhpool-demo-'))
  chmodSync(folder, 0o755)
  const port = await freePort()
  const run = await rhpool(['demo', '--jobs', '16', '--speed', '20'], { RHPOOL_DATA_DIR: join(folder, 'postgres'), RHPOOL_EMBEDDED_PORT: String(port) }, 120_000)
  t.equal(run.code, 0, 'exits 0')
  const lines = run.stdout.split('\n')
  t.match(lines.slice(0, 8).join('\n'), /DATABASE_URL is not set: using the embedded PostgreSQL/, 'says it uses its own database')
  t.match(lines.slice(0, 8).join('\n'), /using the RunningHub SIMULATOR .* two accounts of 3 slots/, 'says plainly it is the simulator')
  t.match(run.stdout, /progress 16\/16/, 'every job finished')
  t.match(run.stdout, /Summary/)
  t.match(run.stdout, /primary\s+│ \d+\s+│ \d+/, 'jobs per account in the summary')
  t.match(run.stdout, /account_2\s+│ \d+/)
  t.ok(existsSync(join(folder, 'postgres', 'PG_VERSION')), 'the database lives in the data folder')
  const probe = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, connect_timeout: 2, onnotice: () => {} })
  await t.rejects(probe`select 1`, 'the embedded PostgreSQL was stopped')
  await probe.end({ timeout: 1 })
})
