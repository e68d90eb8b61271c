// The rhpool CLI, as a user runs it: a real process, a real database.
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { projectRoot } from '../src/db/migrate.ts'
import { freshDatabase } from './helpers/db.ts'
import { claim, insertJob, setAccounts } from './helpers/jobs.ts'
import { rhpool } from './helpers/cli.ts'

t.test('--help everywhere', async (t) => {
  const top = await rhpool(['--help'])
  t.equal(top.code, 0)
  for (const command of ['migrate', 'start', 'dev', 'demo', 'status', 'accounts', 'jobs', 'cancel', 'simulate'])
    t.match(top.stdout, new RegExp(`\\b${command}\\b`), `lists ${command}`)
  for (const command of ['migrate', 'start', 'dev', 'demo', 'status', 'accounts', 'jobs', 'cancel']) {
    const help = await rhpool([command, '--help'])
    t.equal(help.code, 0, `${command} --help`)
    t.match(help.stdout, /Usage: rhpool/)
  }
})

t.test('bad arguments get a clear error and exit code 2', async (t) => {
  const { url } = await freshDatabase(t)
  const cases: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['demo', '--jobs', '0'], /--jobs must be a whole number from 1 to 10000/],
    [['jobs', '--status', 'nope'], /--status must be one of pending, queued/],
    [['jobs', '--tool', 'hammer'], /--tool must be one of pose_changer, upscaler, veste_ai, video_upscaler/],
    [['jobs', '--limit', 'lots'], /--limit must be a whole number/],
    [['cancel', 'hammer', '00000000-0000-4000-8000-000000000000'], /unknown tool "hammer"/],
    [['cancel', 'upscaler', 'not-a-uuid'], /job id must be a uuid/],
    [['cancel', 'upscaler', '00000000-0000-4000-8000-000000000000'], /no job 00000000-0000-4000-8000-000000000000 in upscaler_jobs/],
    [['cancel', 'upscaler'], /missing required argument 'id'/],
  ]
  for (const [args, message] of cases) {
    const run = await rhpool(args, { DATABASE_URL: url })
    t.equal(run.code, 2, `rhpool ${args.join(' ')} exits 2`)
    t.match(run.stderr, message, `rhpool ${args.join(' ')}: ${message}`)
  }
  const noDb = await rhpool(['status'])
  t.equal(noDb.code, 2)
  t.match(noDb.stderr, /no database: set DATABASE_URL/)
  const badConfig = await rhpool(['start'], { DATABASE_URL: url, RUNNINGHUB_API_KEY: 'key-that-is-long-enough', RUNNINGHUB_SLOTS: 'three' })
  t.equal(badConfig.code, 2)
  t.match(badConfig.stderr, /RUNNINGHUB_SLOTS must be a whole number from 1 to 10000/, 'a broken configuration names the variable')
})

t.test('status, accounts, jobs and cancel read and act on the database', async (t) => {
  const { url, sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
  ])
  const ids = []
  for (let i = 0; i < 4; i++)
    ids.push(
      await insertJob(sql, 'upscaler_jobs', {
        userId: '6f0b6f3e-3c39-4b8e-9b7e-00000000000a',
        createdAt: new Date(Date.now() - 10_000 + i),
      })
    )
  const veste = await insertJob(sql, 'veste_ai_jobs')
  await claim(sql, 3)
  const env = { DATABASE_URL: url }

  const json = await rhpool(['status', '--json'], env)
  t.equal(json.code, 0)
  const [fromSql] = await sql`select rhpool.pool_status() as s`
  t.same({ ...JSON.parse(json.stdout), oldestQueuedSeconds: 0 }, { ...fromSql!.s, oldestQueuedSeconds: 0 }, "--json is the plan's JSON")

  const table = await rhpool(['status'], env)
  t.match(table.stdout, /running 3\/6 slots · queued 2/)
  t.match(table.stdout, /primary\s+│ ■■■ /, 'primary drawn with three filled slots')
  t.match(table.stdout, /account_2\s+│ □□□ /, 'account_2 with three empty ones')
  t.match(table.stdout, /upscaler\s+│ 1/)

  const accounts = await rhpool(['accounts'], env)
  t.match(accounts.stdout, /fp_primary/, 'fingerprints shown')

  const queued = await rhpool(['jobs', '--status', 'queued', '--json'], env)
  const rows = JSON.parse(queued.stdout) as Array<{ id: string; position: number }>
  t.same(
    rows.map((r) => [r.id, r.position]).sort((a, b) => Number(a[1]) - Number(b[1])),
    [
      [ids[3], 1],
      [veste, 2],
    ],
    'queued jobs with their positions'
  )
  const byUser = await rhpool(['jobs', '--user', '6f0b6f3e-3c39-4b8e-9b7e-00000000000a', '--tool', 'upscaler', '--json'], env)
  t.equal(JSON.parse(byUser.stdout).length, 4)

  const cancelled = await rhpool(['cancel', 'veste_ai', veste], env)
  t.equal(cancelled.code, 0)
  t.match(cancelled.stdout, /cancelled/)
  const [row] = await sql`select status from veste_ai_jobs where id = ${veste}`
  t.equal(row!.status, 'cancelled')
  const again = await rhpool(['cancel', 'veste_ai_jobs', veste], env)
  t.match(again.stdout, /nothing to do: the job is already cancelled/)
})

t.test('simulate runs the simulator alone and stops on SIGTERM', async (t) => {
  const child = spawn(
    process.execPath,
    [join(projectRoot, 'bin', 'rhpool.js'), 'simulate', '--port', '0', '--keys', 'sim-key-one-1234,sim-key-two-5678'],
    { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let out = ''
  child.stdout.on('data', (c) => (out += String(c)))
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  const deadline = Date.now() + 15_000
  while (!/listening on (http:\/\/127\.0\.0\.1:\d+)/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  t.ok(url, `simulator up at ${url}`)
  t.notOk(out.includes('sim-key-one-1234'), 'keys are printed only as fingerprints')
  const status = await fetch(`${url}/openapi/v2/queue/status`, { headers: { authorization: 'Bearer sim-key-one-1234' } })
  t.match(await status.json(), { code: 0, data: { concurrentLimit: 3, runningCount: '0' } })
  child.kill('SIGTERM')
  t.equal(await exited, 0)
})
