// What rhpool's function layer leaves in a database's catalog, in a form two
// databases can be compared by: functions, views, triggers and grants.
// `catalogShape` compares across databases (a fresh one and an upgraded one);
// `catalogSnapshot` adds what only one database can compare with itself
// (oids and row versions, what rhpool recorded), to prove nothing changed.
import type { Sql } from './db.ts'
import { jobTables } from './jobs.ts'

const tables = [...jobTables] as string[]

export interface CatalogShape {
  functions: unknown[]
  views: unknown[]
  triggers: unknown[]
  grants: unknown[]
}

export async function catalogShape(sql: Sql): Promise<CatalogShape> {
  const functions = await sql`
    select p.proname as name, pg_get_function_identity_arguments(p.oid) as args, pg_get_function_result(p.oid) as result,
           md5(coalesce(p.prosrc, '') || coalesce(pg_get_function_sqlbody(p.oid), '')) as body,
           p.prosecdef as security_definer, p.proconfig as config, p.provolatile as volatility, p.procost as cost
    from pg_proc p where p.pronamespace = 'rhpool'::regnamespace
    order by 1, 2`
  const views = await sql`
    select c.oid::regclass::text as name, pg_get_viewdef(c.oid) as definition
    from pg_class c where c.relnamespace = 'rhpool'::regnamespace and c.relkind in ('v', 'm')
    order by 1`
  const triggers = await sql`
    select t.tgrelid::regclass::text as "table", t.tgname as name, pg_get_triggerdef(t.oid) as definition
    from pg_trigger t join pg_class c on c.oid = t.tgrelid
    where not t.tgisinternal
      and (c.relnamespace = 'rhpool'::regnamespace or (c.relnamespace = 'public'::regnamespace and c.relname = any(${tables})))
    order by 1, 2`
  // Every ACL on rhpool's schema, relations, columns and functions, and on the job tables.
  const grants = await sql`
    select 'schema' as kind, n.nspname as name, n.nspacl::text as acl from pg_namespace n where n.nspname = 'rhpool'
    union all
    select 'relation', c.oid::regclass::text, c.relacl::text from pg_class c
    where c.relnamespace = 'rhpool'::regnamespace or (c.relnamespace = 'public'::regnamespace and c.relname = any(${tables}))
    union all
    select 'column', a.attrelid::regclass::text || '.' || a.attname, a.attacl::text from pg_attribute a
    join pg_class c on c.oid = a.attrelid where c.relnamespace = 'rhpool'::regnamespace and a.attacl is not null
    union all
    select 'function', p.oid::regprocedure::text, p.proacl::text from pg_proc p where p.pronamespace = 'rhpool'::regnamespace
    order by 1, 2`
  return { functions, views, triggers, grants }
}

export interface CatalogSnapshot extends CatalogShape {
  /** Oids and xmins: a rolled-back drop-and-create leaves them as they were, a committed one does not. */
  rows: unknown[]
  recorded: unknown[]
}

export async function catalogSnapshot(sql: Sql): Promise<CatalogSnapshot> {
  const rows = await sql`
    select 'function' as kind, p.oid::regprocedure::text as name, p.oid::int8 as oid, p.xmin::text as xmin from pg_proc p where p.pronamespace = 'rhpool'::regnamespace
    union all
    select 'view', c.oid::regclass::text, c.oid::int8, r.xmin::text from pg_class c join pg_rewrite r on r.ev_class = c.oid
    where c.relnamespace = 'rhpool'::regnamespace and c.relkind = 'v'
    union all
    select 'trigger', t.tgrelid::regclass::text || '.' || t.tgname, t.oid::int8, t.xmin::text from pg_trigger t where not t.tgisinternal
    order by 1, 2`
  const [tables] = await sql`select to_regclass('rhpool.function_layer') is not null as layer, to_regclass('cron.job') is not null as cron`
  const recorded = [
    ...(await sql`select filename, hash from graphile_migrate.migrations order by filename`),
    ...(tables!.layer ? await sql`select release, last_migration, applied_at from rhpool.function_layer` : []),
    ...(tables!.cron ? await sql`select jobname, schedule, command from cron.job order by jobid` : []),
  ]
  return { ...(await catalogShape(sql)), rows, recorded }
}
