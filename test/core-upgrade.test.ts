// The migrations on a database that already runs the first version: its four
// tables (no api_account, no constraints, the old statuses) with rows in them.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { migrate as graphileMigrate } from 'graphile-migrate'
import { migrate, projectRoot } from '../src/db/migrate.ts'
import { claim, setAccounts } from './helpers/jobs.ts'
import { firstVersionSchema } from './helpers/first-version.ts'
import { tempFolder } from './helpers/temp-folder.ts'

t.test('upgrading a first-version database keeps every row and maps its states', async (t) => {
  const { sql, url } = await freshDatabase(t, { template: null })
  await sql.unsafe(firstVersionSchema)
  await sql.unsafe(`
    insert into upscaler_jobs (id, status, input_url, task_id, output_url, rh_cost, created_at, completed_at, user_credit_cost, position) values
      ('00000000-0000-0000-0000-000000000001', 'completed', 'https://in/1.png', '1900000000000000001', 'https://out/1.png', 0.05, '2025-01-01', '2025-01-01 00:01', 2, null),
      ('00000000-0000-0000-0000-000000000002', 'queued', 'https://in/2.png', null, null, null, '2025-01-02', null, 2, 1),
      ('00000000-0000-0000-0000-000000000003', 'running', 'https://in/3.png', '1900000000000000003', null, null, '2025-01-03', null, 2, null),
      ('00000000-0000-0000-0000-000000000004', 'starting', 'https://in/4.png', null, null, null, '2025-01-04', null, 2, null),
      ('00000000-0000-0000-0000-000000000005', 'pending', null, null, null, null, '2025-01-05', null, 2, null),
      ('00000000-0000-0000-0000-000000000006', 'stuck???', 'https://in/6.png', null, null, null, '2025-01-06', null, 2, null);
    insert into pose_changer_jobs (id, status, person_image_url, reference_image_url, created_at) values
      ('00000000-0000-0000-0000-000000000011', 'queued', 'p', 'r', '2025-01-01 12:00');
    insert into video_upscaler_jobs (id, status, video_url, task_id, created_at, started_at) values
      ('00000000-0000-0000-0000-000000000021', 'starting', 'v', '1900000000000000021', '2025-01-01', '2025-01-01 00:00:05');
  `)
  const before = await sql`select id, output_url, rh_cost, user_credit_cost, created_at, input_url from upscaler_jobs order by id`

  await migrate(url)
  await migrate(url)

  const after = await sql`select id, output_url, rh_cost, user_credit_cost, created_at, input_url from upscaler_jobs order by id`
  t.same(after, before, "the product's columns kept their data")

  const rows = await sql`select id, status, api_account, error_code from upscaler_jobs order by id`
  t.same(
    rows.map((r) => [r.status, r.api_account]),
    [
      ['completed', 'primary'],
      ['queued', 'primary'],
      ['running', 'primary'],
      ['outcome_unknown', 'primary'],
      ['pending', 'primary'],
      ['failed', 'primary'],
    ],
    "existing rows are primary's; starting without a task id is an unknown outcome, never resubmitted"
  )
  t.equal(rows[5]!.error_code, 'UNKNOWN_LEGACY_STATUS', 'a status nobody understands fails visibly')
  const [video] = await sql`select status from video_upscaler_jobs`
  t.equal(video!.status, 'running', 'starting with a task id: RunningHub has it')

  const slots = await sql`select job_table, account from rhpool.runs where account is not null order by job_table, job_id`
  t.same(
    slots.map((s) => [s.job_table, s.account]),
    [
      ['upscaler_jobs', 'primary'],
      ['upscaler_jobs', 'primary'],
      ['video_upscaler_jobs', 'primary'],
    ],
    "the three tasks in flight hold primary's three slots"
  )
  const [account] =
    await sql`select enabled, disabled_reason, configured_slots as slots, key_holders, unheld_reason from rhpool.account_status where name = 'primary'`
  t.same(
    account,
    { enabled: true, disabled_reason: null, slots: 3, key_holders: 0, unheld_reason: 'no live dispatcher holds its key' },
    'no dispatcher holds its key yet: it takes no work until one does'
  )

  const queue = await sql`select job_table, job_id from rhpool.runs where status = 'queued' order by fifo_at`
  t.same(
    queue.map((q) => q.job_id),
    ['00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-000000000002'],
    'queued rows are in the global queue'
  )

  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
  ])
  const claims = await claim(sql)
  t.same(
    claims.map((c) => c.api_account),
    ['account_2', 'account_2'],
    'primary is full with the upgraded running tasks'
  )

  const [events] = await sql`select count(*)::int as n from rhpool.job_events`
  t.equal(events!.n, 0, 'history is not replayed as new terminal events')

  const [{ n: migrations }] = (await sql`select count(*)::int as n from graphile_migrate.migrations`) as unknown as [{ n: number }]
  const committed = readdirSync(join(projectRoot, 'db', 'migrations', 'committed')).filter((f) => f.endsWith('.sql')).length
  t.equal(migrations, committed, 'each committed migration ran once; running them again changed nothing')
})

t.test('a fresh database and an upgraded one end up with the same schema', async (t) => {
  const fresh = await freshDatabase(t)
  const upgraded = await freshDatabase(t, { template: null })
  await upgraded.sql.unsafe(firstVersionSchema)
  await migrate(upgraded.url)
  const shape = (db: typeof fresh) => db.sql`
    select table_schema, table_name, column_name, data_type, is_nullable, column_default
    from information_schema.columns where table_schema in ('public', 'rhpool') order by 1, 2, 3`
  t.same(await shape(upgraded), await shape(fresh), 'same columns, types, nullability and defaults')
  const constraints = (db: typeof fresh) => db.sql`
    select conrelid::regclass::text as rel, conname, pg_get_constraintdef(oid) as def from pg_constraint
    where connamespace in ('public'::regnamespace, 'rhpool'::regnamespace) order by 1, 2`
  t.same(await constraints(upgraded), await constraints(fresh), 'same constraints')
  const triggers = (db: typeof fresh) =>
    db.sql`select tgrelid::regclass::text as rel, tgname from pg_trigger where not tgisinternal order by 1, 2`
  t.same(await triggers(upgraded), await triggers(fresh), 'same triggers')
})

// A database built by the migrations before rhpool.runs (000001-000012), with jobs in
// every state as that release left them: product rows, rhpool.queue rows for the queued
// ones and rhpool.slots rows (holder, lease, last check) for the ones in flight.
t.test('a database of the release before rhpool.runs upgrades with its jobs, queued, in flight and finished', async (t) => {
  const { sql, url } = await freshDatabase(t, { template: null })
  const before = tempFolder(t, 'rhpool-before-runs-')
  mkdirSync(join(before, 'committed'))
  const committed = join(projectRoot, 'db', 'migrations', 'committed')
  for (const file of readdirSync(committed).filter((f) => f.endsWith('.sql') && f < '000013'))
    copyFileSync(join(committed, file), join(before, 'committed', file))
  await graphileMigrate({ connectionString: url, migrationsFolder: before }, false, false)

  const id = (n: number) => `00000000-0000-0000-0000-0000000000${String(n).padStart(2, '0')}`
  await sql`insert into rhpool.accounts (name, position, slots, key_fingerprint) values ('primary', 1, 3, 'fp1'), ('account_2', 2, 3, 'fp2')`
  await sql.unsafe(`
    insert into upscaler_jobs (id, status, input_url, api_account, priority, attempts, task_id, created_at, submitted_at, completed_at, output_url) values
      ('${id(1)}', 'queued', 'u', null, 0, 1, null, '2026-01-01 00:00:01', null, null, null),
      ('${id(2)}', 'queued', 'u', null, 5, 0, null, '2026-01-01 00:00:02', null, null, null),
      ('${id(3)}', 'claimed', 'u', 'primary', 0, 0, null, '2026-01-01 00:00:03', null, null, null),
      ('${id(4)}', 'submitting', 'u', 'primary', 0, 1, null, '2026-01-01 00:00:04', '2026-01-01 00:01:04', null, null),
      ('${id(5)}', 'running', 'u', 'account_2', 0, 1, '1900000000000000005', '2026-01-01 00:00:05', '2026-01-01 00:01:05', null, null),
      ('${id(6)}', 'outcome_unknown', 'u', 'account_2', 0, 1, null, '2026-01-01 00:00:06', '2026-01-01 00:01:06', null, null),
      ('${id(7)}', 'completed', 'u', 'primary', 0, 1, '1900000000000000007', '2026-01-01 00:00:07', '2026-01-01 00:01:07', '2026-01-01 00:02:07', 'https://out/7.png'),
      ('${id(8)}', 'failed', 'u', 'primary', 0, 5, null, '2026-01-01 00:00:08', null, '2026-01-01 00:02:08', null),
      ('${id(9)}', 'pending', null, null, 0, 0, null, '2026-01-01 00:00:09', null, null, null);
    insert into rhpool.queue (job_table, job_id, priority, created_at) values
      ('upscaler_jobs', '${id(1)}', 0, '2026-01-01 00:00:01'), ('upscaler_jobs', '${id(2)}', 5, '2026-01-01 00:00:02');
    insert into rhpool.slots (job_table, job_id, account, claimed_at, lease_expires_at, holder, checked_at) values
      ('upscaler_jobs', '${id(3)}', 'primary', '2026-01-01 00:01:03', '2026-01-01 00:02:03', 'host:1:aaa', null),
      ('upscaler_jobs', '${id(4)}', 'primary', '2026-01-01 00:01:04', '2026-01-01 00:02:04', 'host:1:aaa', null),
      ('upscaler_jobs', '${id(5)}', 'account_2', '2026-01-01 00:01:05', null, 'host:2:bbb', '2026-01-01 00:20:05'),
      ('upscaler_jobs', '${id(6)}', 'account_2', '2026-01-01 00:01:06', null, 'host:2:bbb', null);
    insert into rhpool.job_events (job_table, job_id, status, api_account, error_code) values
      ('upscaler_jobs', '${id(7)}', 'completed', 'primary', null), ('upscaler_jobs', '${id(8)}', 'failed', 'primary', '805');
  `)
  const productBefore = await sql`select * from upscaler_jobs order by id`

  await migrate(url)
  await migrate(url)

  t.same(await sql`select * from upscaler_jobs order by id`, productBefore, 'every product row is exactly as it was')
  const runs = await sql`select job_id, status, account, priority, fifo_at, attempts, holder, lease_expires_at, task_id, checked_at,
                                claim_token is not null as has_claim from rhpool.runs order by job_id`
  t.same(
    runs.map((r) => [r.job_id, r.status, r.account, r.priority, r.attempts, r.holder, r.task_id, r.has_claim]),
    [
      [id(1), 'queued', null, 0, 1, null, null, false],
      [id(2), 'queued', null, 5, 0, null, null, false],
      [id(3), 'claimed', 'primary', 0, 0, 'host:1:aaa', null, true],
      [id(4), 'submitting', 'primary', 0, 1, 'host:1:aaa', null, true],
      [id(5), 'running', 'account_2', 0, 1, 'host:2:bbb', '1900000000000000005', false],
      [id(6), 'outcome_unknown', 'account_2', 0, 1, 'host:2:bbb', null, false],
      [id(9), 'pending', null, 0, 0, null, null, false],
    ],
    'one run per unfinished job, in its state, on its account, with its claim; none for the finished ones'
  )
  t.same(
    runs.find((r) => r.job_id === id(3))!.lease_expires_at,
    new Date('2026-01-01T00:02:03Z'),
    'a claim keeps its lease (long expired: maintenance recovers it)'
  )
  t.same(
    runs.find((r) => r.job_id === id(5))!.checked_at,
    new Date('2026-01-01T00:20:05Z'),
    'and a running job its last reconciliation check'
  )
  t.same(runs.find((r) => r.job_id === id(1))!.fifo_at, new Date('2026-01-01T00:00:01Z'), 'a queued job keeps its place')
  t.equal((await sql`select to_regclass('rhpool.queue') as q, to_regclass('rhpool.slots') as s`)[0]!.q, null, 'the old copies are gone')
  t.equal((await sql`select count(*)::int as n from rhpool.job_events`)[0]!.n, 2, 'the history of events is kept, none added')

  // The carried-over state runs on the new core.
  await sql`select rhpool.run_maintenance()`
  t.match(
    (await sql`select status, attempts from rhpool.runs where job_id = ${id(3)}`)[0],
    { status: 'queued', attempts: 1 },
    'the stale claim was recovered'
  )
  // The stale submission became an unknown outcome (never resent) and, like the unknown
  // outcome carried over, is long past its callback deadline: failed, for a refund.
  const unknowns = await sql`select id, status, error_code from upscaler_jobs where id in (${id(4)}, ${id(6)}) order by id`
  t.same(
    unknowns.map((j) => [j.status, j.error_code]),
    [
      ['failed', 'SUBMISSION_OUTCOME_UNKNOWN'],
      ['failed', 'SUBMISSION_OUTCOME_UNKNOWN'],
    ]
  )
  const actions = await sql`select action from rhpool.maintenance_log where job_id = ${id(4)} order by id`
  t.same(
    actions.map((a) => a.action),
    ['lease_expired_outcome_unknown', 'unknown_outcome_failed'],
    'never resubmitted, on record'
  )
  await setAccounts(sql, [
    { name: 'primary', slots: 3 },
    { name: 'account_2', slots: 3 },
  ])
  const claims = await claim(sql, 10)
  t.same(
    claims.map((c) => [c.job_id, c.api_account]),
    [
      [id(2), 'primary'],
      [id(1), 'primary'],
      [id(3), 'primary'],
    ],
    'priority, then FIFO, fill-first: the queued jobs and the recovered claim'
  )
  t.equal(
    (
      await sql`select rhpool.finish_job('upscaler_jobs', ${id(5)}, '1900000000000000005', true, ${sql.json([{ fileUrl: 'https://out/5.png' }])}) as r`
    )[0]!.r,
    'applied',
    'a task that ran before the upgrade completes after it'
  )
  t.match((await sql`select status, api_account from upscaler_jobs where id = ${id(5)}`)[0], {
    status: 'completed',
    api_account: 'account_2',
  })
})
