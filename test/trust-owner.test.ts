// Migrations and the service as the database's owner, not a superuser, with
// pg_cron absent or switched on by the operator: Supabase's `postgres`. The owner migrates a fresh database,
// allows Supabase's authenticated role, runs a job's whole SQL path, and the
// refund worker's role reads and marks its event.
import t from 'tap'
import { clusterUrl, connect } from './helpers/db.ts'
import { claim, runClaimed, setAccounts } from './helpers/jobs.ts'
import { clientInsert, ensureRole, newUser, supabaseClient } from './helpers/roles.ts'
import { tempFolder } from './helpers/temp-folder.ts'
import { join } from 'node:path'
import postgres from 'postgres'
import { migrate } from '../src/db/migrate.ts'
import { startCluster } from '../src/localdb/cluster.ts'

const owner = 'rhpool_test_owner'

t.test("a NOSUPERUSER owner migrates a database without pg_cron and runs the service's SQL", async (t) => {
  const admin = connect(clusterUrl('postgres'), { max: 1 })
  t.teardown(() => admin.end({ timeout: 5 }))
  await ensureRole(admin, owner, 'login nosuperuser nocreaterole')
  const database = `t_owner_${process.pid}_${Date.now()}`
  await admin.unsafe(`create database "${database}" owner "${owner}" template template0`)
  const url = `postgres://${owner}@127.0.0.1:${new URL(clusterUrl('postgres')).port}/${database}`

  await migrate(url)
  await migrate(url)
  const sql = connect(url, { max: 4 })
  t.teardown(() => sql.end({ timeout: 5 }))
  const [me] = await sql`select rolsuper from pg_roles where rolname = current_user`
  t.equal(me!.rolsuper, false, 'migrated as a non-superuser')
  t.same(await sql`select extname from pg_extension where extname = 'pg_cron'`, [], 'pg_cron absent: the dispatcher runs maintenance')
  const [schema] = await sql`select nspowner::regrole::text as owner from pg_namespace where nspname = 'rhpool'`
  t.equal(schema!.owner, owner, 'rhpool belongs to the owner')

  // The product's client, allowed by the owner (the roles themselves are
  // Supabase's, made by its init script).
  const adminHere = connect(clusterUrl(database), { max: 1 })
  t.teardown(() => adminHere.end({ timeout: 5 }))
  const client = await supabaseClient(sql, database, adminHere)
  t.teardown(() => client.end())
  const [allowed] = await sql`select role_name, grants from rhpool.allowed_roles`
  t.same(allowed, { role_name: 'authenticated', grants: 'rhpool_client' })

  // A job's SQL path, every step as the owner but the client's insert.
  await setAccounts(sql, [{ name: 'primary', slots: 1 }])
  const user = newUser()
  const id = await client.as(user, (tx) => clientInsert(tx, 'upscaler_jobs', user))
  const [c] = await claim(sql, 1)
  t.equal(c!.job_id, id, "the client's job is claimed")
  await runClaimed(sql, c!, '1900000000000000301')
  const [{ result }] = (await sql`select rhpool.finish_job('upscaler_jobs', ${id}, '1900000000000000301', true,
    ${sql.json([{ url: 'https://out/1.png', outputType: 'png' }])}, ${sql.json({ consumeMoney: 0.05 })}) as result`) as unknown as [
    { result: string },
  ]
  t.equal(result, 'applied', 'finished as the owner')
  const view = (await client.as(user, (tx) => tx`select rhpool.job_view('upscaler_jobs', ${id}) as v`))[0]!.v
  t.match(view, { status: 'completed', outputUrl: 'https://out/1.png' }, 'the client reads its finished job')
  await sql`select rhpool.run_maintenance()`
  t.pass('a maintenance round runs as the owner')

  // The refund worker: Supabase's service_role, allowed rhpool_events.
  await sql`select rhpool.allow_client('service_role', 'rhpool_events')`
  await sql`select rhpool.allow_client('service_role', 'rhpool_events')`
  const worker = connect(`postgres://authenticator@127.0.0.1:${new URL(clusterUrl('postgres')).port}/${database}`, { max: 1 })
  t.teardown(() => worker.end({ timeout: 5 }))
  await worker.begin(async (tx) => {
    await tx`set local role service_role`
    const events = await tx`select id, job_id, status, user_id from rhpool.unprocessed_events()`
    t.match(events, [{ job_id: id, status: 'completed', user_id: user }], 'the terminal event, to refund or notify')
    t.equal((await tx`select rhpool.mark_event_processed(${events[0]!.id}) as m`)[0]!.m, true, 'marked processed')
    t.equal((await tx`select rhpool.mark_event_processed(${events[0]!.id}) as m`)[0]!.m, false, 'a second mark does nothing')
    t.same(await tx`select id from rhpool.unprocessed_events()`, [], 'nothing left to process')
    await t.rejects(
      tx.savepoint((sp) => sp`select rhpool.pool_status()`),
      /permission denied for function pool_status/,
      'rhpool_events is not a client'
    )
  })
})

// The same owner where the operator switched pg_cron on for it (Supabase: the extension is
// enabled from the dashboard and its schema is usable by postgres): migrate schedules the
// maintenance round under the owner's name, and that round runs as the owner.
t.test('a NOSUPERUSER owner with pg_cron switched on: migrate schedules maintenance as the owner', { timeout: 120_000 }, async (t) => {
  const folder = tempFolder(t, 'rhpool-owner-cron-', { readableByOthers: true })
  const cluster = await startCluster({ dataDir: join(folder, 'pg'), fast: true, cronDatabase: 'product' })
  const closing: Array<() => Promise<unknown>> = []
  // Connections first, then the cluster (its death would break them mid-teardown).
  t.teardown(async () => {
    for (const close of closing.reverse()) await close().catch(() => undefined)
    await cluster.destroy()
  })
  const admin = postgres(cluster.url(), { max: 1, onnotice: () => {} })
  closing.push(() => admin.end({ timeout: 2 }))
  // A fresh cluster has no rhpool roles yet: the owner creates them, as Supabase's postgres
  // (NOSUPERUSER but CREATEROLE) can.
  await admin.unsafe(`create role "${owner}" login nosuperuser createrole`)
  await admin.unsafe(`create database product owner "${owner}"`)
  const operator = postgres(cluster.url('product'), { max: 1, onnotice: () => {} })
  closing.push(() => operator.end({ timeout: 2 }))
  await operator.unsafe(`create extension pg_cron; grant usage on schema cron to "${owner}"`)

  const url = `postgres://${owner}@127.0.0.1:${cluster.port}/product`
  await migrate(url)
  await migrate(url)
  const sql = postgres(url, { max: 2, onnotice: () => {} })
  closing.push(() => sql.end({ timeout: 2 }))
  const [me] = await sql`select rolsuper from pg_roles where rolname = current_user`
  t.equal(me!.rolsuper, false, 'migrated as a non-superuser')
  const jobs = await operator`select schedule, command, username, active from cron.job where jobname = 'rhpool-maintenance'`
  t.same(
    jobs,
    [{ schedule: '* * * * *', command: 'select rhpool.run_maintenance()', username: owner, active: true }],
    'one schedule (migrating twice adds none), every minute on pg_cron 1.4, run as the owner'
  )
  const [round] = await sql`select rhpool.run_maintenance() as summary`
  t.ok(round!.summary, 'the round it schedules runs as the owner')
  // graphile-migrate keeps its pool a moment after migrate returns, and exits the process if the
  // server goes away under it: the cluster is destroyed only once the owner has no session left.
  await sql.end({ timeout: 2 })
  for (;;) {
    const [left] = await operator`select count(*)::int as n from pg_stat_activity where usename = ${owner}`
    if (left!.n === 0) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
})
