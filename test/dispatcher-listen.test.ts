// NOTIFY drives the latency-critical paths, and LISTEN survives a lost
// connection; SIGHUP brings in a new key with no restart.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { insertJob } from './helpers/jobs.ts'
import { spawnRhpool, startSystem, testKeys } from './helpers/system.ts'
import { tempFolder } from './helpers/temp-folder.ts'

t.test("a job inserted while a slot is free starts at once, and still does after LISTEN's connection is killed", async (t) => {
  // A one-minute backstop poll: anything faster than that came through NOTIFY.
  const sys = await startSystem(t, { slots: [3], env: { RHPOOL_POLL_INTERVAL_MS: '60000' } })
  const listening = async () =>
    (await sys.db.sql`select 1 from pg_stat_activity where datname = current_database() and query ilike 'listen%'`).length > 0
  await sys.waitFor('the dispatcher to LISTEN', listening)
  // Proof of NOTIFY is a submission well before the backstop poll could have made it, whatever
  // the machine's load: not a latency target (bench/pipeline.ts measures that).
  const beforeThePoll = 30_000
  const timeToSubmission = async () => {
    const before = sys.sim.ledger.submissions.length
    const started = Date.now()
    await insertJob(sys.db.sql, 'upscaler_jobs')
    await sys.waitFor('a submission', async () => sys.sim.ledger.submissions.length > before, beforeThePoll)
    return Date.now() - started
  }
  const first = await timeToSubmission()
  t.ok(first < beforeThePoll, `submitted ${first} ms after the insert (the poll runs every 60 s)`)

  const killed = await sys.db.sql`select pg_terminate_backend(pid) as ok from pg_stat_activity
    where datname = current_database() and query ilike 'listen%' and pid <> pg_backend_pid()`
  t.ok(killed.length >= 1, 'the LISTEN connection was terminated')
  await sys.waitFor('LISTEN to come back', listening)
  const second = await timeToSubmission()
  t.ok(second < beforeThePoll, `after the reconnect, submitted ${second} ms after the insert`)
})

t.test('SIGHUP re-reads RHPOOL_ENV_FILE: a new key becomes usable, a removed one is disabled', async (t) => {
  const sys = await startSystem(t, { slots: [1, 1], inProcess: false, sim: { taskDurationMs: 60_000 } })
  const folder = tempFolder(t, 'rhpool-env-')
  const envFile = join(folder, 'rhpool.env')
  writeFileSync(envFile, `RUNNINGHUB_API_KEY=${testKeys[0]}\nRUNNINGHUB_SLOTS=1\n`)
  const base = Object.fromEntries(
    Object.entries(sys.env).filter(([k]) => !k.startsWith('RUNNINGHUB_API_KEY') && !k.startsWith('RUNNINGHUB_SLOTS'))
  )
  const rhpool = spawnRhpool(t, { ...base, RHPOOL_ENV_FILE: envFile })
  await insertJob(sys.db.sql, 'upscaler_jobs')
  const second = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor(
    'one running on primary',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'running'`)[0]!.n === 1
  )
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.equal(
    (await sys.db.sql`select status from upscaler_jobs where id = ${second}`)[0]!.status,
    'queued',
    'one slot in all: the second waits'
  )

  writeFileSync(envFile, `RUNNINGHUB_API_KEY=${testKeys[0]}\nRUNNINGHUB_API_KEY_2=${testKeys[1]}\nRUNNINGHUB_SLOTS=1\n`)
  rhpool.child.kill('SIGHUP')
  await sys.waitFor(
    'the second job to run on account_2',
    async () =>
      (await sys.db.sql`select 1 from upscaler_jobs where id = ${second} and status = 'running' and api_account = 'account_2'`).length > 0
  )
  t.pass('account_2 took the waiting job, no restart, no code change')

  writeFileSync(envFile, `RUNNINGHUB_API_KEY_2=${testKeys[1]}\nRUNNINGHUB_SLOTS=1\n`)
  rhpool.child.kill('SIGHUP')
  await sys.waitFor(
    'primary no longer held',
    async () =>
      (
        await sys.db
          .sql`select 1 from rhpool.account_status where name = 'primary' and enabled and key_holders = 0 and unheld_reason = 'no live dispatcher holds its key'`
      ).length > 0
  )
  t.pass('a removed key is no longer held: its account takes no work (and is not disabled, another dispatcher may hold it)')
  t.notOk(rhpool.output.join('').includes(testKeys[1]!), 'the new key never reached the logs')
})
