// The function layer's objects as the catalog has them: every function and
// view in schema rhpool, with what depends on it (what a DROP ... CASCADE of
// it would take along) and whether this release's files (re)defined it.
//
// How "(re)defined here" is told, object by object:
// - A view: the xmin of its _RETURN rule, which `create or replace view`
//   rewrites and nothing else in the files touches.
// - A trigger: the xmin of its pg_trigger row (`create or replace trigger`).
// - A function: not its pg_proc xmin, because GRANT and REVOKE rewrite that
//   row too, and 990-grants.sql revokes on all functions of the schema. Every
//   function still there when the files start was marked first (an absurd
//   COST, see `markKept`); `create or replace function` resets the cost to
//   the file's, so a function still marked afterwards was not redefined.
//   (An aggregate's own row is pg_aggregate's; a procedure has no COST and is
//   judged by its pg_proc xmin.)
//
// xmin is "one of this transaction's xids", not `= pg_current_xact_id()`: a
// row written inside a savepoint or a PL/pgSQL exception block carries that
// subtransaction's xid. So xmin is widened to 64 bits within [top xid, newest
// xid of this transaction] and must still be in progress. The newest xid is
// the xmin of a row the caller wrote in a savepoint just before (a snapshot's
// xmax may be at or below this transaction's own xids). Rows of other
// transactions still in progress are invisible here, so an in-progress xmin
// of a visible row is ours.
import type postgres from 'postgres'

export interface LayerObject {
  /** `function`, `procedure`, `aggregate` or `view`: how to drop it. */
  kind: 'function' | 'procedure' | 'aggregate' | 'view'
  /** The catalog row (pg_proc or pg_class oid). */
  oid: number
  /** `rhpool.f(integer)` or `rhpool.v`: what to drop. */
  identity: string
  /** A trigger function: `returns trigger` and no arguments, so `create or replace` can always redefine it. */
  triggerFunction: boolean
  /** Whether this release's files (re)defined it (meaningful only after `markKept` and the files). */
  written: boolean
  /** Objects that depend on it and are not the layer's to recreate: the product's, or a migration's (a default, an index). */
  heldBy: string[]
  /** rhpool objects this release's files (re)defined that depend on it. */
  neededBy: string[]
}

/** 2^-10: exact in a float4, and no file declares it. */
const keptMark = '0.0009765625'

// A row's xmin belongs to this transaction (top level or a subtransaction).
const writtenHere = (xmin: string) => `coalesce((
  select case when x.xid <= me.newest then pg_xact_status(x.xid::text::xid8) = 'in progress' else false end
  from (select me.top + mod(${xmin}::text::numeric - mod(me.top, 4294967296) + 4294967296, 4294967296) as xid) x), false)`

const query = `
with recursive
me as (
  select pg_current_xact_id()::text::numeric as top,
         pg_current_xact_id()::text::numeric + mod($1::text::numeric - mod(pg_current_xact_id()::text::numeric, 4294967296) + 4294967296, 4294967296) as newest
),
-- rhpool's functions and views, not an extension's.
layer as (
  select 'pg_proc'::regclass::oid as classid, p.oid as objid from pg_proc p
  where p.pronamespace = 'rhpool'::regnamespace
  union all
  select 'pg_class'::regclass::oid, c.oid from pg_class c
  where c.relnamespace = 'rhpool'::regnamespace and c.relkind = 'v'
),
-- Everything dropping a root would drop: what depends on it (normal, auto or
-- internal dependencies), and what a reached object is an internal part of (a
-- view's _RETURN rule belongs to its view, which goes too).
reach(root_classid, root_objid, classid, objid) as (
  select l.classid, l.objid, l.classid, l.objid from layer l
  where not exists (select 1 from pg_depend e where e.classid = l.classid and e.objid = l.objid and e.deptype = 'e')
  union
  select r.root_classid, r.root_objid, x.classid, x.objid
  from reach r cross join lateral (
    select d.classid, d.objid from pg_depend d
    where d.refclassid = r.classid and d.refobjid = r.objid and d.deptype in ('n', 'a', 'i')
    union all
    select d.refclassid, d.refobjid from pg_depend d
    where d.classid = r.classid and d.objid = r.objid and d.deptype = 'i'
  ) x
),
-- rhpool: a function or view in schema rhpool, a trigger on an rhpool table,
-- or one of rhpool's triggers on a job table of rhpool.tools (named rhpool_*,
-- recreated by rhpool.attach_job_table). part: a view's rule or row type, judged with the
-- view. foreign: anything else (the product's objects; a migration's
-- defaults, constraints, indexes, tables).
judged as (
  select r.*,
         case
           when p.oid is not null then case when p.pronamespace = 'rhpool'::regnamespace then 'rhpool' else 'foreign' end
           when c.oid is not null then case when c.relnamespace = 'rhpool'::regnamespace and c.relkind = 'v' then 'rhpool' else 'foreign' end
           when w.oid is not null and w.rulename = '_RETURN' then 'part'
           when ty.oid is not null and (ty.typrelid <> 0 or ty.typcategory = 'A') then 'part'
           when tg.oid is not null then
             case when tgc.relnamespace = 'rhpool'::regnamespace
                    or (tg.tgname like 'rhpool\\_%' and tgc.relnamespace = 'public'::regnamespace
                        and tgc.relname in (select t.job_table from rhpool.tools t)) then 'rhpool' else 'foreign' end
           else 'foreign'
         end as side,
         case
           when p.prokind in ('f', 'w') then p.procost <> ${keptMark}
           when p.prokind = 'a' then ${writtenHere('ag.xmin')}
           else ${writtenHere('coalesce(p.xmin, vr.xmin, tg.xmin)')}
         end as written,
         (select i.type || ' ' || i.identity from pg_identify_object(r.classid, r.objid, 0) i) as description
  from reach r
  cross join me
  left join pg_proc p on r.classid = 'pg_proc'::regclass and p.oid = r.objid
  left join pg_aggregate ag on ag.aggfnoid = p.oid
  left join pg_class c on r.classid = 'pg_class'::regclass and c.oid = r.objid
  left join pg_rewrite vr on c.relkind = 'v' and vr.ev_class = c.oid and vr.rulename = '_RETURN'
  left join pg_rewrite w on r.classid = 'pg_rewrite'::regclass and w.oid = r.objid
  left join pg_type ty on r.classid = 'pg_type'::regclass and ty.oid = r.objid
  left join pg_trigger tg on r.classid = 'pg_trigger'::regclass and tg.oid = r.objid
  left join pg_class tgc on tgc.oid = tg.tgrelid
)
select case when j.root_classid = 'pg_class'::regclass then 'view'
            when p.prokind = 'p' then 'procedure' when p.prokind = 'a' then 'aggregate' else 'function' end as kind,
       j.root_objid::int8 as oid,
       case when j.root_classid = 'pg_class'::regclass then j.root_objid::regclass::text else j.root_objid::regprocedure::text end as identity,
       coalesce(p.prorettype in ('trigger'::regtype, 'event_trigger'::regtype), false) as "triggerFunction",
       bool_or(j.written) filter (where j.classid = j.root_classid and j.objid = j.root_objid) as written,
       coalesce(array_agg(distinct j.description) filter (where j.side = 'foreign'), '{}') as "heldBy",
       coalesce(array_agg(distinct j.description) filter (where j.side = 'rhpool' and j.written
                                                           and (j.classid, j.objid) <> (j.root_classid, j.root_objid)), '{}') as "neededBy"
from judged j
left join pg_proc p on j.root_classid = 'pg_proc'::regclass and p.oid = j.root_objid
group by j.root_classid, j.root_objid, p.prokind, p.prorettype
order by identity`

/**
 * newestXid: the xmin of a row this transaction wrote last (in a savepoint);
 * without it no view or trigger counts as written here.
 */
export async function layerObjects(tx: postgres.TransactionSql, newestXid: string | null = null): Promise<LayerObject[]> {
  const rows = await tx.unsafe(query, [newestXid])
  return rows.map((row) => ({ ...(row as unknown as LayerObject), oid: Number(row.oid) }))
}

/** Marks a function the files are about to redefine in place, so that one they do not redefine is told apart afterwards. */
export async function markKept(tx: postgres.TransactionSql, object: LayerObject): Promise<void> {
  if (object.kind === 'function') await tx.unsafe(`alter function ${object.identity} cost ${keptMark}`)
}

/** Whether the row (pg_proc or pg_class oid) is still there: an earlier CASCADE may have taken it. */
export async function stillThere(tx: postgres.TransactionSql, object: LayerObject): Promise<boolean> {
  const [row] = object.kind === 'view'
    ? await tx`select 1 from pg_class where oid = ${object.oid}`
    : await tx`select 1 from pg_proc where oid = ${object.oid}`
  return row !== undefined
}

export function dropStatement(object: LayerObject): string {
  // identity is regprocedure/regclass text: quoted and qualified by Postgres itself.
  return `drop ${object.kind} ${object.identity} cascade`
}
