-- Attaches a job table: it inherits rhpool.job_rows (so rhpool's static
-- transitions reach it), and gets rhpool's triggers. Every table in
-- rhpool.tools gets them; a fifth tool is a table, a row in rhpool.tools and
-- this call. A table that lacks one of rhpool.job_rows' columns, or has it
-- with another type, is refused by PostgreSQL naming the column.
--
-- The rhpool.jobs view is built here, with the tables it reads, because
-- language sql functions are checked when they are created: account costs and
-- the dashboard (640, 630) read it.
create or replace function rhpool.attach_job_table(job_table text)
returns void
language plpgsql
volatile
as $$
declare
  table_relation regclass := format('public.%I', job_table)::regclass;
  schema_owner oid := (select n.nspowner from pg_catalog.pg_namespace n where n.nspname = 'rhpool');
begin
  update rhpool.tools t set relation = table_relation
   where t.job_table = attach_job_table.job_table and t.relation is distinct from table_relation;
  if not exists (select 1 from pg_inherits i where i.inhrelid = table_relation and i.inhparent = 'rhpool.job_rows'::regclass) then
    execute format('alter table public.%I inherit rhpool.job_rows', job_table);
  end if;
  -- Fires first (triggers fire in name order): the writer's rights are
  -- checked before rhpool's guard acts on the row. Not at all for rhpool's
  -- own writes (a transition is several per job): the WHEN clause asks what
  -- the function asks first, whether the writer is rhpool (the owner of
  -- schema rhpool, by oid: resolved now, no search_path can change it), and
  -- skips the function call when it is.
  execute format('create or replace trigger rhpool_job_client_guard before insert or update or delete on public.%I
                  for each row when (not pg_catalog.pg_has_role(current_user, %s::oid, ''usage''))
                  execute function rhpool.job_client_guard()', job_table, schema_owner);
  execute format('create or replace trigger rhpool_job_client_truncate before truncate on public.%I
                  for each statement execute function rhpool.job_client_guard()', job_table);
  -- rhpool's guard: on insert and delete always (the run is created and
  -- removed with the row); on update only outside rhpool's transitions, which
  -- write the row as rhpool.runs says and need no guard (the first thing the
  -- function would check, asked here without calling it).
  execute format('create or replace trigger rhpool_job_guard before insert or delete on public.%I
                  for each row execute function rhpool.job_guard()', job_table);
  execute format('create or replace trigger rhpool_job_guard_update before update on public.%I
                  for each row when (current_setting(''rhpool.transition'', true) is distinct from ''on'')
                  execute function rhpool.job_guard()', job_table);
  -- The triggers of the design before rhpool.runs (a copy of the state kept
  -- in step after each write) are gone with it.
  execute format('drop trigger if exists rhpool_job_sync on public.%I', job_table);
  execute format('drop trigger if exists rhpool_job_forget on public.%I', job_table);
end
$$;

select rhpool.attach_job_table(t.job_table) from rhpool.tools t;

-- rhpool.jobs: every job table's rhpool columns as one relation, with the
-- table it lives in: what the scheduler's own reports, the CLI and tests read.
-- The job table is found per row from the row's table (a scalar lookup, so
-- the scan below stays a plain append of each table's indexes: newest-first
-- listings and lookups by id read a few rows, not four whole tables).
create or replace view rhpool.jobs as
select (select t.job_table from rhpool.tools t where t.relation = j.tableoid) as job_table,
       (select t.tool from rhpool.tools t where t.relation = j.tableoid) as tool,
       j.id, j.status, j.api_account, j.task_id, j.user_id::text as user_id, j.priority,
       j.attempts, j.created_at, j.claimed_at, j.submitted_at, j.completed_at, j.cancel_requested_at,
       j.error_code, j.error_message, j.rh_cost, j.output_url, j.rh_cost_field, j.rh_cost_unit
from rhpool.job_rows j;

