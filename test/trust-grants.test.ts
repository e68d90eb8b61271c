// Grants are one list (db/functions/990-grants.sql): a fresh and an upgraded
// database end with the same rights on every rhpool object, PUBLIC holds none,
// and a role given rhpool_client's rights keeps up with them across migrates.
import t from 'tap'
import { freshDatabase, type Sql } from './helpers/db.ts'
import { firstVersionSchema } from './helpers/first-version.ts'
import { supabaseRoles } from './helpers/roles.ts'
import { migrate } from '../src/db/migrate.ts'
import { dbFolderCopy } from './helpers/db-folder.ts'

/** Every ACL on rhpool's schema, relations, columns and functions, and on the job tables. */
const grants = (sql: Sql) => sql`
  select 'schema' as kind, n.nspname as name, n.nspacl::text as acl from pg_namespace n where n.nspname = 'rhpool'
  union all
  select 'relation', c.oid::regclass::text, c.relacl::text from pg_class c
  where c.relnamespace = 'rhpool'::regnamespace or c.oid in ('public.upscaler_jobs'::regclass, 'public.pose_changer_jobs'::regclass,
    'public.veste_ai_jobs'::regclass, 'public.video_upscaler_jobs'::regclass)
  union all
  select 'column', a.attrelid::regclass::text || '.' || a.attname, a.attacl::text from pg_attribute a
  join pg_class c on c.oid = a.attrelid where c.relnamespace = 'rhpool'::regnamespace and a.attacl is not null
  union all
  select 'function', p.oid::regprocedure::text, p.proacl::text from pg_proc p where p.pronamespace = 'rhpool'::regnamespace
  order by 1, 2`

t.test('a fresh and an upgraded database have the same grants; PUBLIC has none', async (t) => {
  const fresh = await freshDatabase(t)
  const upgraded = await freshDatabase(t, { template: null })
  await supabaseRoles(fresh.sql)
  await upgraded.sql.unsafe(firstVersionSchema)
  await migrate(upgraded.url)
  for (const db of [fresh, upgraded]) await db.sql`select rhpool.allow_client('authenticated')`
  await migrate(upgraded.url)
  t.same(await grants(upgraded.sql), await grants(fresh.sql), 'same rights on every rhpool object')

  const publicRights = await fresh.sql`
    select p.oid::regprocedure::text as name from pg_proc p cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    where p.pronamespace = 'rhpool'::regnamespace and a.grantee = 0
    union all
    select n.nspname from pg_namespace n cross join lateral aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
    where n.nspname = 'rhpool' and a.grantee = 0
    union all
    select c.oid::regclass::text from pg_class c cross join lateral aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
    where c.relnamespace = 'rhpool'::regnamespace and a.grantee = 0`
  t.same(publicRights, [], 'PUBLIC may use nothing in rhpool')

  const held = async (role: string) =>
    (
      await fresh.sql`
    select p.oid::regprocedure::text as name from pg_proc p cross join lateral aclexplode(p.proacl) a
    where p.pronamespace = 'rhpool'::regnamespace and a.grantee = ${role}::regrole and a.privilege_type = 'EXECUTE' order by 1`
    ).map((r) => r.name)
  t.same(
    await held('rhpool_client'),
    [
      'rhpool.cancel_job(text,uuid,text)',
      'rhpool.job_view(text,uuid)',
      'rhpool.pool_status()',
      'rhpool.queue_ahead(text,uuid)',
      'rhpool.queue_position(text,uuid)',
      'rhpool.require_job_table(text,text)',
      'rhpool.user_message(text,text)',
    ],
    "rhpool_client: the README's client interface and what it calls as the caller"
  )
  t.same(await held('authenticated'), await held('rhpool_client'), 'authenticated holds the same, directly')
  t.same(await held('rhpool_events'), ['rhpool.mark_event_processed(bigint)', 'rhpool.unprocessed_events(integer)'])
  const [tables] = await fresh.sql`
    select count(*)::int as n from pg_class c cross join lateral aclexplode(c.relacl) a
    where c.relnamespace = 'rhpool'::regnamespace and a.grantee in ('rhpool_client'::regrole, 'rhpool_events'::regrole, 'authenticated'::regrole)`
  t.equal(tables!.n, 0, 'no table or view of rhpool is granted to a client')
})

t.test('an allowed role gets what rhpool_client gains in a later version, at the next migrate', async (t) => {
  const db = await freshDatabase(t)
  await supabaseRoles(db.sql)
  await db.sql`select rhpool.allow_client('authenticated')`
  await db.sql`select rhpool.allow_client('authenticated')`
  t.same(
    await db.sql`select role_name, grants from rhpool.allowed_roles`,
    [{ role_name: 'authenticated', grants: 'rhpool_client' }],
    'allowed once'
  )
  // A later version's new client function, granted to rhpool_client in its 990-grants.sql.
  const nextVersion = dbFolderCopy(t, {
    'functions/500-next-version.sql': "create or replace function rhpool.new_in_next_version() returns int language sql as 'select 1';\n",
    'functions/990-grants.sql': (text) =>
      text.replace(
        '  rhpool.queue_ahead(text, uuid)\nto rhpool_client;',
        '  rhpool.queue_ahead(text, uuid),\n  rhpool.new_in_next_version()\nto rhpool_client;'
      ),
  })
  const can = async () =>
    (
      await db.sql`
    select to_regprocedure('rhpool.new_in_next_version()') is not null
           and has_function_privilege('authenticated', 'rhpool.new_in_next_version()', 'execute') as ok`
    )[0]!.ok
  t.equal(await can(), false, 'not before the migrate')
  await migrate(db.url, { dbFolder: nextVersion })
  t.equal(await can(), true, 'the migrate gave it to authenticated too')
  t.equal((await db.sql`select has_function_privilege('rhpool_client', 'rhpool.new_in_next_version()', 'execute') as ok`)[0]!.ok, true)
  await t.rejects(db.sql`select rhpool.allow_client('no_such_role')`, /allow_client: no role named 'no_such_role'/)
})
