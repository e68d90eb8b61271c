// The trust boundary, as a client: a role under RLS on the job tables, set up
// both ways a product does (an INHERIT role granted rhpool_client; Supabase's
// NOINHERIT authenticated, allowed with rhpool.allow_client). The whole SQL
// interface works for its own jobs; every forgery is refused naming what is
// refused, and nothing changes; another user's job can be neither cancelled
// nor read through rhpool's functions.
import t from 'tap'
import { freshDatabase, type Sql } from './helpers/db.ts'
import { claim, insertJob, jobStatus, jobTables, runClaimed, setAccounts } from './helpers/jobs.ts'
import { clientInsert, inheritClient, newUser, supabaseClient, type Client } from './helpers/roles.ts'

type Setup = (sql: Sql, db: { url: string; name: string }) => Promise<Client>
const setups: Setup[] = [(sql, db) => inheritClient(sql, db.url), (sql, db) => supabaseClient(sql, db.name)]

/** Every column of a job as the owner reads it. */
const snapshot = async (sql: Sql, table: string, id: string) => await jobStatus(sql, table, id)

for (const setup of setups) {
  t.test("the SQL interface works for a client's own jobs", async (t) => {
    const db = await freshDatabase(t)
    const { sql } = db
    const client = await setup(sql, db)
    t.teardown(() => client.end())
    t.comment(client.kind)
    await setAccounts(sql, [{ name: 'primary', slots: 1 }])
    const me = newUser()

    for (const table of jobTables) {
      const id = await client.as(me, (tx) => clientInsert(tx, table, me))
      t.equal((await snapshot(sql, table, id)).status, 'queued', `${table}: inserted as queued`)
    }
    const pending = await client.as(me, (tx) => clientInsert(tx, 'upscaler_jobs', me, { status: 'pending', input_file_name: null }))
    await client.as(me, (tx) => tx`update upscaler_jobs set input_file_name = 'late.png' where id = ${pending}`)
    await client.as(me, (tx) => tx`update upscaler_jobs set status = 'queued' where id = ${pending}`)
    const [state] = await client.as(me, (tx) => tx`select status, api_account from upscaler_jobs where id = ${pending}`)
    t.same(state, { status: 'queued', api_account: null }, 'its pending job marked queued, read back')

    const position = (await client.as(me, (tx) => tx`select rhpool.queue_position('upscaler_jobs', ${pending}) as position`))[0]!.position
    t.equal(position, 5, 'queue_position: behind its four earlier jobs')
    const view = (await client.as(me, (tx) => tx`select rhpool.job_view('upscaler_jobs', ${pending}) as view`))[0]!.view
    t.match(view, { id: pending, status: 'queued', position: 5 }, 'job_view of its own job')
    const status = (await client.as(me, (tx) => tx`select rhpool.pool_status() as status`))[0]!.status
    t.match(status, { totalQueued: 5, totalMaxSlots: 1 }, 'pool_status')

    t.equal((await client.as(me, (tx) => tx`select rhpool.cancel_job('upscaler_jobs', ${pending}) as r`))[0]!.r, 'cancelled')
    const cancelled = await snapshot(sql, 'upscaler_jobs', pending)
    t.match(cancelled, { status: 'cancelled', error_code: 'CANCELLED' }, 'cancelled at once')
    const [event] = await sql`select status, user_id from rhpool.job_events where job_id = ${pending}`
    t.same(event, { status: 'cancelled', user_id: me }, 'its terminal event, for the refund')
    t.equal((await client.as(me, (tx) => tx`select rhpool.cancel_job('upscaler_jobs', ${pending}) as r`))[0]!.r, 'already_cancelled')

    // A job already at RunningHub: the request is recorded for the dispatcher.
    const [c] = await claim(sql, 1)
    await runClaimed(sql, c!, '1900000000000000101')
    t.equal((await client.as(me, (tx) => tx`select rhpool.cancel_job(${c!.job_table}, ${c!.job_id}) as r`))[0]!.r, 'cancel_requested')
    t.ok((await snapshot(sql, c!.job_table, c!.job_id)).cancel_requested_at, 'cancel requested on the running job')
  })

  t.test('every forgery is refused, saying what, and changes nothing', async (t) => {
    const db = await freshDatabase(t)
    const { sql } = db
    const client = await setup(sql, db)
    t.teardown(() => client.end())
    t.comment(client.kind)
    await setAccounts(sql, [{ name: 'primary', slots: 2 }])
    const me = newUser()
    const early = await insertJob(sql, 'upscaler_jobs', { userId: me, createdAt: new Date('2026-01-01') })
    const queued = await client.as(me, (tx) => clientInsert(tx, 'upscaler_jobs', me))
    const pending = await client.as(me, (tx) => clientInsert(tx, 'upscaler_jobs', me, { status: 'pending' }))
    const [c] = await claim(sql, 1)
    t.equal(c!.job_id, early)
    await runClaimed(sql, c!, '1900000000000000201')
    const running = early

    const forge = async (id: string, set: Record<string, unknown>, refused: RegExp, what: string) => {
      const before = await snapshot(sql, 'upscaler_jobs', id)
      const queueBefore = await sql`select * from rhpool.runs order by job_id`
      await t.rejects(
        client.as(me, (tx) => tx`update upscaler_jobs set ${tx(set)} where id = ${id}`),
        refused,
        what
      )
      t.same(await snapshot(sql, 'upscaler_jobs', id), before, `${what}: the job is unchanged`)
      t.same(await sql`select * from rhpool.runs order by job_id`, queueBefore, `${what}: the runs are unchanged`)
    }

    for (const status of ['claimed', 'submitting', 'running', 'completed', 'failed', 'cancelled', 'pending']) {
      await forge(queued, { status }, new RegExp(`may not move job .* from queued to ${status}`), `queued → ${status}`)
    }
    for (const status of ['completed', 'failed', 'queued']) {
      await forge(running, { status }, new RegExp(`may not move job .* from running to ${status}`), `running → ${status}`)
    }
    await forge(pending, { status: 'cancelled' }, /may not move job .* from pending to cancelled/, 'pending → cancelled by hand')
    const owned: Record<string, unknown> = {
      api_account: 'primary',
      task_id: '1900000000000000999',
      attempts: 0,
      max_attempts: 100,
      not_before: new Date('2030-01-01'),
      claimed_at: new Date(),
      submitted_at: new Date(),
      started_at: new Date(),
      completed_at: new Date(),
      outputs: sql.json([{ fileUrl: 'x' }]),
      output_url: 'https://forged/out.png',
      rh_usage: sql.json({ consumeMoney: 0 }),
      rh_cost: 0,
      rh_cost_field: 'usage.consumeMoney',
      rh_cost_unit: 'money',
      error_code: 'FORGED',
      error_message: 'forged',
      waited_in_queue: true,
      queue_wait_seconds: 1,
      updated_at: new Date('2000-01-01'),
      id: '00000000-0000-0000-0000-00000000f00d',
      created_at: new Date('2000-01-01'),
      priority: 1000,
    }
    for (const [column, value] of Object.entries(owned)) {
      // attempts: 0 is its value on a queued job; forge it on the running one (1).
      const target = column === 'attempts' || column === 'error_message' ? running : queued
      await forge(target, { [column]: value }, new RegExp(`may not change ${column} of job`), `write of ${column}`)
    }
    await forge(
      queued,
      { status: 'queued', task_id: 'x', rh_cost: 0 },
      /may not change rh_cost, task_id of job/,
      'several at once are all named'
    )

    // Inserts: rhpool's columns are refused; created_at is rhpool's time, whatever the client wrote.
    for (const column of [
      'api_account',
      'task_id',
      'attempts',
      'max_attempts',
      'not_before',
      'submitted_at',
      'output_url',
      'rh_cost',
      'error_code',
      'cancel_requested_at',
    ]) {
      const value = owned[column] ?? (column === 'cancel_requested_at' ? new Date() : 7)
      await t.rejects(
        client.as(me, (tx) => clientInsert(tx, 'upscaler_jobs', me, { [column]: column === 'attempts' ? 3 : value })),
        new RegExp(`may not set ${column} on a new job`),
        `insert with ${column} refused`
      )
    }
    await t.rejects(
      client.as(me, (tx) => clientInsert(tx, 'upscaler_jobs', me, { status: 'running' })),
      /must start as 'pending' or 'queued'/
    )
    await t.rejects(
      client.as(me, (tx) => clientInsert(tx, 'upscaler_jobs', me, { priority: 3 })),
      /may not set priority on a new job/,
      'a client cannot choose its priority (its place in the global queue)'
    )
    const backdated = await client.as(me, (tx) => clientInsert(tx, 'upscaler_jobs', me, { created_at: new Date('2000-01-01') }))
    const row = await snapshot(sql, 'upscaler_jobs', backdated)
    t.ok((row.created_at as Date).getTime() > Date.now() - 60_000, "a client-supplied created_at is replaced by rhpool's time")
    t.equal(row.priority, 0, 'the default priority')
    const [entry] = await sql`select fifo_at from rhpool.runs where job_id = ${backdated}`
    t.same(entry!.fifo_at, row.created_at, "and its place in the queue is rhpool's time")

    const jobsBefore = (await sql`select count(*)::int as n from upscaler_jobs`)[0]!.n
    t.equal(jobsBefore, 4, 'no refused insert left a row')

    // A job in flight cannot be deleted (its slot would be freed under RunningHub's task).
    await t.rejects(
      client.as(me, (tx) => tx`delete from upscaler_jobs where id = ${running}`),
      /is running and cannot be deleted/
    )

    // A client's own pg_has_role ahead of pg_catalog does not make it rhpool.
    const role = client.kind.startsWith('Supabase') ? 'authenticated' : 'rhpool_test_app_user'
    await sql.unsafe(`
      create schema evil;
      create function evil.pg_has_role(name, oid, text) returns boolean language sql as 'select true';
      grant usage on schema evil to ${role}`)
    await t.rejects(
      client.as(me, async (tx) => {
        await tx`set local search_path = evil, pg_catalog, public`
        await tx`update upscaler_jobs set task_id = '1900000000000000666' where id = ${queued}`
      }),
      /may not change task_id/,
      'a shadowed pg_has_role changes nothing'
    )

    // TRUNCATE skips row triggers and RLS; Supabase grants it to its API roles.
    await sql.unsafe(`grant truncate on upscaler_jobs to ${role}`)
    await t.rejects(
      client.as(me, (tx) => tx`truncate upscaler_jobs`),
      /may not truncate a job table/
    )
    t.equal((await sql`select count(*)::int as n from upscaler_jobs`)[0]!.n, 4, 'truncate refused: every job is still there')

    // rhpool's tables and views: no rights at all.
    for (const relation of [
      'runs',
      'job_rows',
      'job_events',
      'accounts',
      'tools',
      'settings',
      'allowed_roles',
      'webhook_deliveries',
      'maintenance_log',
      'jobs',
      'account_status',
      'queue_status',
    ]) {
      await t.rejects(
        client.as(me, (tx) => tx.unsafe(`select * from rhpool.${relation}`)),
        /permission denied for (table|view)/,
        `select from rhpool.${relation}`
      )
    }
    await t.rejects(
      client.as(
        me,
        (tx) =>
          tx`insert into rhpool.runs (job_table, job_id, status, priority, fifo_at) values ('upscaler_jobs', ${queued}, 'queued', 1000, '2000-01-01')`
      ),
      /permission denied for table runs/
    )
    await t.rejects(
      client.as(me, (tx) => tx`update rhpool.job_rows set status = 'completed'`),
      /permission denied for table job_rows/
    )
    await t.rejects(
      client.as(me, (tx) => tx`update rhpool.job_events set processed_at = now()`),
      /permission denied for table job_events/
    )
    // rhpool's own functions: not the client's.
    for (const call of [
      `select * from rhpool.claim_account_slot(1, 'me', 60, null)`,
      `select rhpool.fail_job('upscaler_jobs', '${running}', 'X', 'x')`,
      `select rhpool.finish_job('upscaler_jobs', '${running}', '1900000000000000201', true)`,
      `select rhpool.run_maintenance()`,
      `select rhpool.mark_event_processed(1)`,
      `select rhpool.allow_client('public')`,
      `select rhpool.begin_transition()`,
      `select rhpool.settle_job('upscaler_jobs', '${running}', 'completed')`,
      `select rhpool.requeue_run('upscaler_jobs', '${running}', 0, null)`,
    ]) {
      await t.rejects(
        client.as(me, (tx) => tx.unsafe(call)),
        /permission denied for function/,
        call
      )
    }
    t.equal((await snapshot(sql, 'upscaler_jobs', running)).status, 'running', 'the running job is still running')
  })

  t.test("another user's job can be neither cancelled nor read through rhpool's functions", async (t) => {
    const db = await freshDatabase(t)
    const { sql } = db
    const client = await setup(sql, db)
    t.teardown(() => client.end())
    t.comment(client.kind)
    const me = newUser()
    const other = newUser()
    const theirs = await client.as(other, (tx) => clientInsert(tx, 'pose_changer_jobs', other))
    const before = await snapshot(sql, 'pose_changer_jobs', theirs)
    await t.rejects(
      client.as(me, (tx) => tx`select rhpool.cancel_job('pose_changer_jobs', ${theirs})`),
      /cancel_job: no job .* in pose_changer_jobs/
    )
    t.same(
      (await client.as(me, (tx) => tx`select rhpool.job_view('pose_changer_jobs', ${theirs}) as v`))[0]!.v,
      null,
      'job_view: as if missing'
    )
    t.same(
      (await client.as(me, (tx) => tx`select rhpool.queue_position('pose_changer_jobs', ${theirs}) as p`))[0]!.p,
      null,
      'queue_position: as if missing'
    )
    t.same(await client.as(me, (tx) => tx`select id from pose_changer_jobs where id = ${theirs}`), [], 'RLS: not visible')
    const updated = await client.as(me, (tx) => tx`update pose_changer_jobs set cancel_requested_at = now() where id = ${theirs}`)
    t.equal(updated.count, 0, 'a direct cancellation request reaches no row')
    t.same(await snapshot(sql, 'pose_changer_jobs', theirs), before, 'their job is unchanged')
    t.equal(
      (await client.as(other, (tx) => tx`select rhpool.job_view('pose_changer_jobs', ${theirs}) as v`))[0]!.v.status,
      'queued',
      'its owner still sees it'
    )
  })
}
