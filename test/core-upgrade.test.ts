// The migrations on a database that already runs the first version: its four
// tables (no api_account, no constraints, the old statuses) with rows in them.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { migrate, projectRoot } from '../src/db/migrate.ts'
import { claim, setAccounts } from './helpers/jobs.ts'
import { firstVersionSchema } from './helpers/first-version.ts'

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
  t.same(after, before, 'the product\'s columns kept their data')

  const rows = await sql`select id, status, api_account, error_code from upscaler_jobs order by id`
  t.same(rows.map((r) => [r.status, r.api_account]), [
    ['completed', 'primary'],
    ['queued', 'primary'],
    ['running', 'primary'],
    ['outcome_unknown', 'primary'],
    ['pending', 'primary'],
    ['failed', 'primary'],
  ], 'existing rows are primary\'s; starting without a task id is an unknown outcome, never resubmitted')
  t.equal(rows[5]!.error_code, 'UNKNOWN_LEGACY_STATUS', 'a status nobody understands fails visibly')
  const [video] = await sql`select status from video_upscaler_jobs`
  t.equal(video!.status, 'running', 'starting with a task id: RunningHub has it')

  const slots = await sql`select job_table, account from rhpool.slots order by job_table, job_id`
  t.same(slots.map((s) => [s.job_table, s.account]), [['upscaler_jobs', 'primary'], ['upscaler_jobs', 'primary'], ['video_upscaler_jobs', 'primary']],
    'the three tasks in flight hold primary\'s three slots')
  const [account] = await sql`select enabled, disabled_reason, configured_slots as slots, key_holders, unheld_reason from rhpool.account_status where name = 'primary'`
  t.same(account, { enabled: true, disabled_reason: null, slots: 3, key_holders: 0, unheld_reason: 'no live dispatcher holds its key' },
    'no dispatcher holds its key yet: it takes no work until one does')

  const queue = await sql`select job_table, job_id from rhpool.queue order by created_at`
  t.same(queue.map((q) => q.job_id), ['00000000-0000-0000-0000-000000000011', '00000000-0000-0000-0000-000000000002'], 'queued rows are in the global queue')

  await setAccounts(sql, [{ name: 'primary', slots: 3 }, { name: 'account_2', slots: 3 }])
  const claims = await claim(sql)
  t.same(claims.map((c) => c.api_account), ['account_2', 'account_2'], 'primary is full with the upgraded running tasks')

  const [events] = await sql`select count(*)::int as n from rhpool.job_events`
  t.equal(events!.n, 0, 'history is not replayed as new terminal events')

  const [{ n: migrations }] = await sql`select count(*)::int as n from graphile_migrate.migrations` as unknown as [{ n: number }]
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
  const triggers = (db: typeof fresh) => db.sql`select tgrelid::regclass::text as rel, tgname from pg_trigger where not tgisinternal order by 1, 2`
  t.same(await triggers(upgraded), await triggers(fresh), 'same triggers')
})
