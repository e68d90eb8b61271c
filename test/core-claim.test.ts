// claim_account_slot(): order across tables and accounts, both strategies, and
// every reason an account must not take work.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { claim, fingerprintOf, holdKeys, insertJob, jobStatus, runClaimed, setAccounts } from './helpers/jobs.ts'

const at = (seconds: number): Date => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds))

t.test('fill-first: global FIFO across the four tables, account 1 until full, then 2', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
  ])
  const video = await insertJob(sql, 'video_upscaler_jobs', { createdAt: at(1) })
  const upscale = await insertJob(sql, 'upscaler_jobs', { createdAt: at(2) })
  const veste = await insertJob(sql, 'veste_ai_jobs', { createdAt: at(3) })
  const pose = await insertJob(sql, 'pose_changer_jobs', { createdAt: at(4) })
  const urgent = await insertJob(sql, 'pose_changer_jobs', { createdAt: at(9), priority: 5 })
  const late = await insertJob(sql, 'upscaler_jobs', { createdAt: at(10) })
  const last = await insertJob(sql, 'upscaler_jobs', { createdAt: at(11) })

  const claims = await claim(sql, 100, 'fill-first')
  t.same(
    claims.map((c) => c.job_id),
    [urgent, video, upscale, veste, pose, late],
    'priority first, then created_at, across tables'
  )
  t.same(
    claims.map((c) => c.api_account),
    ['primary', 'primary', 'primary', 'account_2', 'account_2', 'account_2']
  )
  t.equal((await jobStatus(sql, 'upscaler_jobs', last)).status, 'queued', 'the seventh job waits: six slots in all')
  t.same(await claim(sql, 100), [], 'nothing more while every slot is full')

  const [row] = await sql`select api_account, status, claimed_at from veste_ai_jobs where id = ${veste}`
  t.equal(row!.api_account, 'account_2', 'api_account records the account')
  t.equal(row!.status, 'claimed')
})

t.test('spread: each claim goes to the least loaded account', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
    { name: 'account_3', slots: 6 },
  ])
  for (let i = 0; i < 6; i++) await insertJob(sql, 'upscaler_jobs', { createdAt: at(i) })
  const claims = await claim(sql, 6, 'spread')
  // Each claim goes to the account with the lowest share of its slots in use
  // (ties: account order): 0/3, 0/3, 0/6, then 1/6 < 1/3, then 1/3 = 1/3 ...
  t.same(
    claims.map((c) => c.api_account),
    ['primary', 'account_2', 'account_3', 'account_3', 'primary', 'account_2']
  )
  const [next] = await claim(sql, 1, 'spread').then(async (none) => {
    t.same(none, [], 'queue empty')
    await insertJob(sql, 'upscaler_jobs', { createdAt: at(50) })
    return await claim(sql, 1, 'spread')
  })
  t.equal(next!.api_account, 'account_3', 'with 2/3, 2/3 and 2/6 in use, the next job goes to account_3')
})

t.test('strategy comes from rhpool.settings when not passed', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
  ])
  await sql`update rhpool.settings set value = 'spread' where key = 'strategy'`
  for (let i = 0; i < 2; i++) await insertJob(sql, 'upscaler_jobs', { createdAt: at(i) })
  const claims = await claim(sql, 2)
  t.same(
    claims.map((c) => c.api_account),
    ['primary', 'account_2']
  )
  await t.rejects(sql`select * from rhpool.claim_account_slot(1, 'x', 60, 'round-robin')`, /strategy must be 'fill-first' or 'spread'/)
  await t.rejects(sql`select * from rhpool.claim_account_slot(0)`, /max_jobs must be between 1 and 10000/)
})

t.test('no accounts, all disabled, or all cooling down: nothing is claimed', async (t) => {
  const { sql } = await freshDatabase(t)
  const job = await insertJob(sql, 'upscaler_jobs')
  t.same(await claim(sql), [], 'no accounts at all')

  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
  ])
  await sql`select rhpool.disable_account('primary', 'APIKEY_UNAUTHORIZED (802)')`
  await sql`select rhpool.disable_account('account_2', 'TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET (416)')`
  t.same(await claim(sql), [], 'every account disabled')

  await sql`select rhpool.enable_account('account_2')`
  await sql`select rhpool.cool_down_account('account_2', 'TASK_QUEUE_MAXED (421)')`
  t.same(await claim(sql), [], 'the only enabled account is cooling down')
  const [status] = await sql`select rhpool.pool_status() as s`
  const accounts = status!.s.accounts as Array<Record<string, unknown>>
  t.match(
    accounts.find((a) => a.name === 'primary'),
    { enabled: false, disabledReason: 'APIKEY_UNAUTHORIZED (802)', available: 0 }
  )
  t.match(
    accounts.find((a) => a.name === 'account_2'),
    { enabled: true, cooldownReason: 'TASK_QUEUE_MAXED (421)', available: 0 }
  )

  await sql`update rhpool.accounts set cooldown_until = now() - interval '1 second'`
  const claims = await claim(sql)
  t.same(
    claims.map((c) => [c.job_id, c.api_account]),
    [[job, 'account_2']],
    'claimed once the cooldown is over'
  )
})

t.test('cooldowns grow on repeat and are capped', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const seconds: number[] = []
  for (let i = 0; i < 10; i++) {
    const [row] = await sql`select extract(epoch from rhpool.cool_down_account('primary', 'full') - now())::float8 as s`
    seconds.push(Math.round(row!.s))
  }
  t.same(seconds, [5, 10, 20, 40, 80, 160, 300, 300, 300, 300])
  // The cooldown is over; the account takes a job, and RunningHub accepts its task.
  await sql`update rhpool.accounts set cooldown_until = null`
  const job = await insertJob(sql, 'upscaler_jobs')
  const [claimed] = await claim(sql, 1)
  t.equal(claimed!.job_id, job)
  await runClaimed(sql, claimed!, '1900000000000000123')
  const [row] = await sql`select cooldown_streak from rhpool.accounts`
  t.equal(row!.cooldown_streak, 0, 'the task recorded (record_submission) ends the streak, in its own transaction')
})

t.test('a job released because its account was full keeps its place', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 1 }])
  const first = await insertJob(sql, 'upscaler_jobs', { createdAt: at(1) })
  const second = await insertJob(sql, 'veste_ai_jobs', { createdAt: at(2) })
  const [c] = await claim(sql)
  t.equal(c!.job_id, first)
  await sql`select rhpool.begin_submission('upscaler_jobs', ${first}, ${c!.claim_token}, 30)`
  await sql`select rhpool.release_to_queue('upscaler_jobs', ${first}, ${c!.claim_token}, 'TASK_QUEUE_MAXED')`
  const row = await jobStatus(sql, 'upscaler_jobs', first)
  t.match(row, { status: 'queued', api_account: null, attempts: 0 }, 'back in the queue, attempt given back, no account')
  const [position] = await sql`select rhpool.queue_position('veste_ai_jobs', ${second}) as p`
  t.equal(position!.p, 2, 'the younger job is still behind it')
  const [again] = await claim(sql)
  t.equal(again!.job_id, first, 'and it is claimed first again')
})

t.test('backoff: a job waiting for not_before is skipped, not lost', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const waiting = await insertJob(sql, 'upscaler_jobs', { createdAt: at(1) })
  const ready = await insertJob(sql, 'upscaler_jobs', { createdAt: at(2) })
  // not_before is the run's (rhpool.runs owns it); the claim decides at a time given to it.
  await sql`update rhpool.runs set not_before = now() + interval '1 hour' where job_id = ${waiting}`
  t.same(
    (await claim(sql)).map((c) => c.job_id),
    [ready]
  )
  const later = await sql`select job_id from rhpool.claim_account_slot(10, 'test', at => now() + interval '2 hours')`
  t.same(
    later.map((c) => c.job_id),
    [waiting],
    'claimable once its not_before has passed'
  )
})

t.test('pending jobs are ignored until the client marks them queued', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const id = await insertJob(sql, 'pose_changer_jobs', { status: 'pending', extra: { person_file_name: null, reference_file_name: null } })
  t.same(await claim(sql), [], 'a pending job without inputs is not claimable')
  await t.rejects(
    sql`update pose_changer_jobs set status = 'queued' where id = ${id}`,
    /pose_changer_jobs_person_image_url_or_person_file_name_required/,
    'it cannot become queued without its inputs'
  )
  await sql`update pose_changer_jobs set status = 'queued', person_image_url = 'p', reference_image_url = 'r' where id = ${id}`
  t.same(
    (await claim(sql)).map((c) => c.job_id),
    [id]
  )
})

t.test('lowering an account below its load admits nothing until it drains', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  for (let i = 0; i < 5; i++) await insertJob(sql, 'upscaler_jobs', { createdAt: at(i) })
  const running = await claim(sql)
  t.equal(running.length, 3)
  await setAccounts(sql, [{ name: 'primary', slots: 1 }])
  t.same(await claim(sql), [], 'three in flight against one slot: no admission')
  for (const [i, c] of running.entries()) {
    await runClaimed(sql, c, `1900000000000000${i}`)
    await sql`select rhpool.finish_job(${c.job_table}, ${c.job_id}, null, true)`
    const admitted = await claim(sql)
    t.equal(admitted.length, i === 2 ? 1 : 0, `after ${i + 1} finished, ${i === 2 ? 'one is admitted' : 'still none'}`)
  }
})

t.test("account_status counts each account's holders of its recorded key, and tells another key from none", async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 2 },
    { name: 'account_2', slots: 2 },
  ])
  // A second dispatcher with primary's key, and a third with another key under account_2's name;
  // then 'test' stops holding account_2.
  await sql`select count(*) from rhpool.dispatcher_heartbeat('second', ${sql.json([{ name: 'primary', fingerprint: fingerprintOf('primary'), slots: 2 }])}, 86400)`
  await sql`select count(*) from rhpool.dispatcher_heartbeat('third', ${sql.json([{ name: 'account_2', fingerprint: 'fp_another_key', slots: 2 }])}, 86400)`
  await holdKeys(sql, 'test', [{ name: 'primary', slots: 2 }])
  const rows = await sql`select name, key_holders, available, unheld_reason from rhpool.account_status order by name`
  t.same(rows, [
    {
      name: 'account_2',
      key_holders: 0,
      available: 0,
      unheld_reason:
        'no live dispatcher holds its key; live dispatchers hold another key for this name (a different RunningHub account, refused)',
    },
    { name: 'primary', key_holders: 2, available: 2, unheld_reason: null },
  ])
})

t.test('a key nobody holds any more: the account takes no work, is not disabled, and its running jobs still finish', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 1 },
    { name: 'account_2', slots: 1 },
  ])
  await insertJob(sql, 'upscaler_jobs', { createdAt: at(1) })
  await insertJob(sql, 'upscaler_jobs', { createdAt: at(2) })
  const claims = await claim(sql)
  const onSecond = claims.find((c) => c.api_account === 'account_2')!
  await runClaimed(sql, onSecond, '1900000000000000042')
  await setAccounts(sql, [{ name: 'primary', slots: 1 }])
  const [acc] =
    await sql`select enabled, disabled_reason, disabled_code, key_holders, unheld_reason from rhpool.account_status where name = 'account_2'`
  t.same(
    acc,
    { enabled: true, disabled_reason: null, disabled_code: null, key_holders: 0, unheld_reason: 'no live dispatcher holds its key' },
    'not disabled (another dispatcher may hold it): simply not held, and status says so'
  )
  const outcome = await sql`select rhpool.finish_job(${onSecond.job_table}, ${onSecond.job_id}, '1900000000000000042', true) as r`
  t.equal(outcome[0]!.r, 'applied')
  t.equal((await jobStatus(sql, onSecond.job_table, onSecond.job_id)).status, 'completed')
  await insertJob(sql, 'upscaler_jobs', { createdAt: at(3) })
  const [primaryJob] = claims.filter((c) => c.api_account === 'primary')
  await runClaimed(sql, primaryJob!, '1900000000000000043')
  t.same(await claim(sql), [], 'account_2 has a free slot but nobody holds its key: nothing claimed there')
  await setAccounts(sql, [
    { name: 'primary', slots: 1 },
    { name: 'account_2', slots: 1 },
  ])
  const [back] = await sql`select enabled, key_holders, unheld_reason from rhpool.account_status where name = 'account_2'`
  t.same(back, { enabled: true, key_holders: 1, unheld_reason: null }, 'holding the key again makes it usable')
  t.same(
    (await claim(sql)).map((c) => c.api_account),
    ['account_2']
  )
})

t.test('a cooldown that commits while a claim runs keeps the jobs inserted after it off that account', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 2 }])
  // A pause inside the claim, after it has read the accounts and before it reads the queue: the
  // free slots are counted through account_limits(), which here first waits for a lock the test holds.
  await sql`alter function rhpool.account_limits(rhpool.accounts, timestamptz) rename to account_limits_unpaused`
  await sql`create function rhpool.account_limits(account rhpool.accounts, at timestamptz default now())
            returns table (configured integer, reported integer, learned integer, effective integer, reason text, next_probe_at timestamptz)
            language plpgsql volatile as $$
            begin
              perform pg_advisory_lock(4242);
              perform pg_advisory_unlock(4242);
              return query select * from rhpool.account_limits_unpaused(account, at);
            end $$`
  const pause = await sql.reserve()
  t.teardown(() => pause.release())
  await pause`select pg_advisory_lock(4242)`

  let claimEnded = false
  const claiming = claim(sql, 10).finally(() => (claimEnded = true))
  // Until the claim waits at the pause (or, were the pause gone, has ended: then the assertions below say so).
  while (!claimEnded) {
    const [waiting] = await sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = 4242 and not granted`
    if (waiting!.n > 0) break
    await new Promise((resolve) => setImmediate(resolve))
  }
  // Meanwhile RunningHub says primary is full, and then a job arrives.
  await sql`select rhpool.cool_down_account('primary', '421: TASK_QUEUE_MAXED')`
  const arrived = await insertJob(sql, 'upscaler_jobs')
  await pause`select pg_advisory_unlock(4242)`

  t.same(await claiming, [], 'the claim sees the cooldown before it claims: nothing')
  t.equal((await jobStatus(sql, 'upscaler_jobs', arrived)).status, 'queued', 'the job waits for a usable account')
})
