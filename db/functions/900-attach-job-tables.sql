-- Attaches rhpool's triggers to a job table. Every table in rhpool.tools gets
-- them; a fifth tool is a table, a row in rhpool.tools and this call.
create or replace function rhpool.attach_job_table(job_table text)
returns void
language plpgsql
volatile
as $$
begin
  -- Fires first (triggers fire in name order): the writer's rights are
  -- checked before rhpool's guard acts on the row.
  execute format('create or replace trigger rhpool_job_client_guard before insert or update or delete on public.%I
                  for each row execute function rhpool.job_client_guard()', job_table);
  execute format('create or replace trigger rhpool_job_client_truncate before truncate on public.%I
                  for each statement execute function rhpool.job_client_guard()', job_table);
  execute format('create or replace trigger rhpool_job_guard before insert or update on public.%I
                  for each row execute function rhpool.job_guard()', job_table);
  -- cancel_requested_at: a cancellation request changes the status in the
  -- guard, not in the statement's SET list.
  execute format('create or replace trigger rhpool_job_sync after insert or update of status, priority, not_before, created_at, cancel_requested_at on public.%I
                  for each row execute function rhpool.job_sync()', job_table);
  execute format('create or replace trigger rhpool_job_forget after delete on public.%I
                  for each row execute function rhpool.job_forget()', job_table);
end
$$;

-- rhpool.jobs: every job table's scheduling columns as one view, so the
-- scheduler's own queries (cancellations, overdue jobs, drift checks, the CLI)
-- are plain SQL over one relation. Rebuilt whenever a job table is attached.
create or replace function rhpool.rebuild_jobs_view()
returns void
language plpgsql
volatile
as $$
declare
  branches text;
begin
  -- Each branch is a plain scan of one table (names as constants, no join), so
  -- the planner can merge the branches' indexes: newest-first listings and
  -- lookups by id read a few rows, not four whole tables.
  select string_agg(format(
    'select %L::text as job_table, %L::text as tool, j.id, j.status, j.api_account, j.task_id, j.user_id::text as user_id, j.priority,
            j.attempts, j.created_at, j.claimed_at, j.submitted_at, j.completed_at, j.cancel_requested_at,
            j.error_code, j.error_message, j.rh_cost, j.output_url, j.rh_cost_field, j.rh_cost_unit
       from public.%I j', tool.job_table, tool.tool, tool.job_table), ' union all ' order by tool.job_table)
    into branches
  from rhpool.tools tool;
  execute 'create or replace view rhpool.jobs as ' || branches;
end
$$;

select rhpool.attach_job_table(t.job_table) from rhpool.tools t;
select rhpool.rebuild_jobs_view();
