// The database's own rules: bad rows refused with the field named, the state
// machine, one terminal event per job, cancel, and queue positions.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { claim, insertJob, jobStatus, runClaimed, setAccounts } from './helpers/jobs.ts'
import { errorCodeTable, userMessages } from '../src/runninghub/classify.ts'

t.test('bad rows are refused with a message that names the field, and nothing changes', async (t) => {
  const { sql } = await freshDatabase(t)
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    [
      'unknown status',
      () => sql`insert into upscaler_jobs (input_url, status) values ('u', 'started')`,
      /upscaler_jobs\.status: a new job must start as 'pending' or 'queued', not 'started'/,
    ],
    ['a job born running', () => sql`insert into upscaler_jobs (input_url, status) values ('u', 'running')`, /upscaler_jobs\.status/],
    [
      'queued without input',
      () => sql`insert into upscaler_jobs (status) values ('queued')`,
      /upscaler_jobs_input_url_or_input_file_name_required/,
    ],
    [
      'denoise out of range',
      () => sql`insert into upscaler_jobs (input_url, detail_denoise) values ('u', 1.5)`,
      /upscaler_jobs_detail_denoise_between_0_and_1/,
    ],
    [
      'unknown version',
      () => sql`insert into upscaler_jobs (input_url, version) values ('u', 'ultra')`,
      /upscaler_jobs_version_is_pro_standard_or_longe/,
    ],
    [
      'resolution',
      () => sql`insert into upscaler_jobs (input_url, resolution) values ('u', 0)`,
      /upscaler_jobs_resolution_between_64_and_16384/,
    ],
    [
      'priority',
      () => sql`insert into veste_ai_jobs (person_image_url, clothing_image_url, priority) values ('p', 'c', 5000)`,
      /veste_ai_jobs_priority_between_-1000_and_1000/,
    ],
    [
      'missing clothing',
      () => sql`insert into veste_ai_jobs (person_image_url) values ('p')`,
      /veste_ai_jobs_clothing_image_url_or_clothing_file_name_required/,
    ],
    [
      'missing reference',
      () => sql`insert into pose_changer_jobs (person_image_url) values ('p')`,
      /pose_changer_jobs_reference_image_url_or_file_name_required/,
    ],
    [
      'negative video size',
      () => sql`insert into video_upscaler_jobs (video_url, video_width) values ('v', -1)`,
      /video_upscaler_jobs_video_dimensions_positive/,
    ],
    [
      'zero duration',
      () => sql`insert into video_upscaler_jobs (video_url, video_duration_seconds) values ('v', 0)`,
      /video_upscaler_jobs_video_duration_seconds_positive/,
    ],
    [
      'max_attempts',
      () => sql`insert into video_upscaler_jobs (video_url, max_attempts) values ('v', 0)`,
      /video_upscaler_jobs_max_attempts_between_1_and_100/,
    ],
    [
      'slots',
      () => sql`insert into rhpool.accounts (name, position, slots) values ('primary', 1, -1)`,
      /accounts_slots_between_0_and_10000/,
    ],
    ['account name', () => sql`insert into rhpool.accounts (name, position) values ('Primary Key!', 1)`, /accounts_name_format/],
  ]
  for (const [what, attempt, message] of cases) {
    await t.rejects(attempt(), message, what)
  }
  const [counts] = await sql`select (select count(*)::int from upscaler_jobs) + (select count(*)::int from veste_ai_jobs)
    + (select count(*)::int from pose_changer_jobs) + (select count(*)::int from video_upscaler_jobs) as jobs,
    (select count(*)::int from rhpool.runs) as queued, (select count(*)::int from rhpool.accounts) as accounts`
  t.same(counts, { jobs: 0, queued: 0, accounts: 0 }, 'nothing was written')
})

t.test('the state machine: no shortcuts into flight, terminal is final', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 1 }])
  const id = await insertJob(sql, 'upscaler_jobs')
  await t.rejects(
    sql`update upscaler_jobs set status = 'running', api_account = 'primary' where id = ${id}`,
    /cannot move from queued to running/,
    'a client cannot start a job by hand'
  )
  await t.rejects(
    sql`update upscaler_jobs set status = 'claimed', api_account = 'primary' where id = ${id}`,
    /cannot move from queued to claimed by hand/,
    'nor claim it outside claim_account_slot()'
  )
  await t.rejects(
    sql`update upscaler_jobs set api_account = 'primary' where id = ${id}`,
    /scheduling columns .* are written only by rhpool's transitions/,
    'nor give it an account'
  )
  const intoFlight = (account: string) => sql`insert into rhpool.runs (job_table, job_id, status, fifo_at, account, claim_token)
    values ('upscaler_jobs', gen_random_uuid(), 'running', now(), ${account}, null)`
  await t.rejects(intoFlight('nobody'), /no account named nobody/)
  const [c] = await claim(sql)
  await t.rejects(
    intoFlight('primary'),
    /account primary is full \(1 of 1 slots in use\)/,
    'the runs table itself refuses a slot over the limit, whoever writes it'
  )
  await setAccounts(sql, [
    { name: 'primary', slots: 1 },
    { name: 'elsewhere', slots: 1 },
  ])
  await t.rejects(sql`update rhpool.runs set account = 'elsewhere'`, /a run cannot move from account primary to elsewhere/)
  await runClaimed(sql, c!, '1900000000000000001')
  await sql`select rhpool.finish_job('upscaler_jobs', ${id}, '1900000000000000001', false, null, null, '805', 'node 26 ran out of memory')`
  t.match(await jobStatus(sql, 'upscaler_jobs', id), { status: 'failed', error_code: '805', error_message: 'node 26 ran out of memory' })
  await t.rejects(
    sql`update upscaler_jobs set status = 'queued' where id = ${id}`,
    /already failed and cannot become queued; a finished job is final/
  )
  await t.rejects(sql`update upscaler_jobs set status = 'completed' where id = ${id}`, /already failed/)
  await sql`update upscaler_jobs set user_credit_cost = 3 where id = ${id}`
  t.pass('the product may still write its own columns on a finished job')
})

t.test('one terminal event per job, whatever repeats', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 2 }])
  const id = await insertJob(sql, 'veste_ai_jobs', { userId: '6f0b6f3e-3c39-4b8e-9b7e-000000000001' })
  const [c] = await claim(sql)
  await runClaimed(sql, c!, '1900000000000000077')
  const usage = { consumeMoney: '0.12', consumeCoins: '12', taskCostTime: '33', thirdPartyConsumeMoney: '0' }
  const outcomes = []
  for (let i = 0; i < 3; i++) {
    const [r] =
      await sql`select rhpool.finish_job('veste_ai_jobs', ${id}, '1900000000000000077', true, ${sql.json([{ url: 'https://out/1.png', nodeId: '9' }])}, ${sql.json(usage)}) as r`
    outcomes.push(r!.r)
  }
  t.same(outcomes, ['applied', 'duplicate', 'duplicate'])
  const [late] =
    await sql`select rhpool.finish_job('veste_ai_jobs', ${id}, '1900000000000000077', false, null, null, '805', 'late failure') as r`
  t.equal(late!.r, 'duplicate', 'a late contradictory callback changes nothing')
  const job = await jobStatus(sql, 'veste_ai_jobs', id)
  t.match(job, { status: 'completed', output_url: 'https://out/1.png', rh_usage: usage, error_code: null, task_id: '1900000000000000077' })
  t.equal(String(job.rh_cost), '0.12', "cost is RunningHub's figure")
  const events = await sql`select job_table, status, api_account, user_id, task_id, rh_cost::text from rhpool.job_events`
  t.same(events, [
    {
      job_table: 'veste_ai_jobs',
      status: 'completed',
      api_account: 'primary',
      user_id: '6f0b6f3e-3c39-4b8e-9b7e-000000000001',
      task_id: '1900000000000000077',
      rh_cost: '0.12',
    },
  ])
  await t.rejects(
    sql`insert into rhpool.job_events (job_table, job_id, status) values ('veste_ai_jobs', ${id}, 'failed')`,
    /job_events_one_per_job/,
    'a second event for the same job is impossible'
  )
})

t.test('cancel: queued at once, running by request, finished left alone', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 1 }])
  const running = await insertJob(sql, 'upscaler_jobs', { createdAt: new Date('2026-01-01') })
  const queued = await insertJob(sql, 'upscaler_jobs', { createdAt: new Date('2026-01-02') })
  const [c] = await claim(sql)
  await runClaimed(sql, c!, '1900000000000000005')
  const cancel = async (id: string) => (await sql`select rhpool.cancel_job('upscaler_jobs', ${id}) as r`)[0]!.r
  t.equal(await cancel(queued), 'cancelled')
  t.equal((await jobStatus(sql, 'upscaler_jobs', queued)).status, 'cancelled')
  t.equal(await cancel(queued), 'already_cancelled')
  t.equal(await cancel(running), 'cancel_requested', 'a running task must be cancelled at RunningHub first')
  t.ok((await jobStatus(sql, 'upscaler_jobs', running)).cancel_requested_at)
  await t.rejects(sql`select rhpool.cancel_job('users', gen_random_uuid())`, /'users' is not a job table/)
  await t.rejects(sql`select rhpool.cancel_job('upscaler_jobs', gen_random_uuid())`, /no job .* in upscaler_jobs/)
  const [events] = await sql`select count(*)::int as n from rhpool.job_events where status = 'cancelled'`
  t.equal(events!.n, 1, 'the cancelled job has its terminal event (for a refund)')
})

t.test('queue positions are computed across tables and move as the queue moves', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 1 }])
  const ids: Array<{ table: 'upscaler_jobs' | 'veste_ai_jobs'; id: string }> = []
  for (let i = 0; i < 5; i++)
    ids.push({
      table: i % 2 ? 'veste_ai_jobs' : 'upscaler_jobs',
      id: await insertJob(sql, i % 2 ? 'veste_ai_jobs' : 'upscaler_jobs', { createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)) }),
    })
  const positions = async () => Promise.all(ids.map(async (j) => (await sql`select rhpool.queue_position(${j.table}, ${j.id}) as p`)[0]!.p))
  t.same(await positions(), [1, 2, 3, 4, 5])
  await claim(sql)
  t.same(await positions(), [null, 1, 2, 3, 4], 'the claimed job left the queue; everyone moved up')
  const vip = await insertJob(sql, 'pose_changer_jobs', { priority: 10 })
  t.equal((await sql`select rhpool.queue_position('pose_changer_jobs', ${vip}) as p`)[0]!.p, 1, 'higher priority goes first')
  t.same(await positions(), [null, 2, 3, 4, 5])
})

t.test("pool_status is the plan's JSON, plus queue and account state", async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
  ])
  for (let i = 0; i < 6; i++)
    await insertJob(sql, i < 4 ? 'upscaler_jobs' : 'video_upscaler_jobs', { createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)) })
  await claim(sql, 4)
  const [row] = await sql`select rhpool.pool_status() as s`
  t.match(row!.s, {
    totalMaxSlots: 6,
    totalRunning: 4,
    totalQueued: 2,
    accounts: [
      { name: 'primary', running: 3, maxSlots: 3, available: 0 },
      { name: 'account_2', running: 1, maxSlots: 3, available: 2 },
    ],
    queuedByTool: { upscaler: 0, pose_changer: 0, veste_ai: 0, video_upscaler: 2 },
  })
  t.notOk(JSON.stringify(row!.s).includes('fp_'), 'no key material, not even the fingerprint, in the status JSON')
})

t.test("job_view gives end users plain words, never RunningHub's raw text", async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const id = await insertJob(sql, 'upscaler_jobs')
  const [c] = await claim(sql)
  await runClaimed(sql, c!, '1900000000000000031')
  await sql`select rhpool.finish_job('upscaler_jobs', ${id}, null, false, null, null, '421', 'TASK_QUEUE_MAXED: queue limit reached')`
  const [view] = await sql`select rhpool.job_view('upscaler_jobs', ${id}) as v`
  t.match(view!.v, {
    status: 'failed',
    errorCode: '421',
    errorMessage: 'TASK_QUEUE_MAXED: queue limit reached',
    userMessage: 'The job could not be completed. Please try again.',
  })
  const [moderated] = await sql`select rhpool.user_message('failed', '1505') as m`
  t.equal(moderated!.m, 'The job was refused by content moderation.')
})

t.test("the words users see come from classify.ts's table, symbolic codes and rhpool's own included", async (t) => {
  const { sql } = await freshDatabase(t)
  const table = errorCodeTable()
  const shown = await sql`select c.code, rhpool.user_message('failed', c.code) as m from rhpool.error_codes c order by c.code`
  t.same(
    Object.fromEntries(shown.map((r) => [r.code, r.m])),
    Object.fromEntries(table.map((e) => [e.code, e.userMessage])),
    'the database holds the whole table, as migrate wrote it'
  )
  const say = async (status: string, code: string | null) => (await sql`select rhpool.user_message(${status}, ${code}) as m`)[0]!.m
  t.equal(await say('failed', 'PARAMS_INVALID'), userMessages.inputs_refused, 'a symbolic bad-request code reads like its number')
  t.equal(await say('failed', '301'), userMessages.inputs_refused)
  t.equal(await say('failed', '1004'), userMessages.try_again, '1004 is "task gone" (classify.ts), not a refused input')
  t.equal(await say('failed', 'INPUT_TOO_LARGE'), userMessages.inputs_refused, "rhpool's own codes too")
  t.equal(await say('failed', 'SOMETHING_NEW'), userMessages.try_again, 'a code nobody listed: try again')
  t.equal(await say('failed', null), userMessages.try_again)
  t.equal(await say('cancelled', null), userMessages.cancelled)
  t.equal(await say('completed', null), null)
})

t.test("a disabled account says why with a code: the health check brings back a broken key, never an operator's disable", async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 1 },
    { name: 'account_2', slots: 1 },
  ])
  await sql`select rhpool.disable_account('primary', 'taken out for a billing dispute')`
  await sql`select rhpool.account_was_broken('upscaler_jobs', ${'00000000-0000-0000-0000-000000000001'}, null, 'account_2', '802: APIKEY_UNAUTHORIZED')`
  t.same(await sql`select name, enabled, disabled_code from rhpool.account_status order by position`, [
    { name: 'primary', enabled: false, disabled_code: 'operator' },
    { name: 'account_2', enabled: false, disabled_code: 'account_broken' },
  ])
  const again = async (name: string) => (await sql`select rhpool.reenable_recovered_account(${name}) as r`)[0]!.r
  t.equal(await again('primary'), false, "an operator's disable stays")
  t.equal(await again('account_2'), true, 'a key that works again is back')
  t.same((await sql`select enabled, disabled_code, disabled_reason from rhpool.accounts where name = 'account_2'`)[0], {
    enabled: true,
    disabled_code: null,
    disabled_reason: null,
  })
  await t.rejects(
    sql`select rhpool.disable_account('primary', 'why', 'because')`,
    /accounts_disabled_code_known/,
    'an unknown code is refused'
  )
  await t.rejects(
    sql`update rhpool.settings set value = 'round-robin' where key = 'strategy'`,
    /settings_strategy_known/,
    'the strategy setting is checked'
  )
  await t.rejects(
    sql`update rhpool.settings set value = 'soon' where key = 'lease_seconds'`,
    /settings_lease_seconds_between_5_and_3600/,
    'and the lease'
  )
  await sql`delete from rhpool.settings where key = 'lease_seconds'`
  await insertJob(sql, 'upscaler_jobs')
  await t.rejects(
    sql`select * from rhpool.claim_account_slot(1, 'x')`,
    /rhpool.settings has no 'lease_seconds' row/,
    'no second default to fall back on'
  )
})
