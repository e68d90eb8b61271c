-- The product's job tables, as rhpool sees them.
--
-- rhpool.runs (one row per unfinished job) owns the scheduling state; the
-- product's row holds the first version's columns, api_account, status and
-- the results, written by rhpool's transitions in the same transaction,
-- through rhpool.job_rows (the parent table every job table inherits from).
-- Lock order, everywhere: the product's row, then the run. A client's write
-- holds its row before its trigger reaches the run, so a transition that took
-- them the other way round could deadlock with it.
--
-- Here too: the check of a job table's name, and the lookup of the job that
-- holds a RunningHub task id, across every job table.

-- Every function that takes a job table by name checks it here first: the
-- name is then safe to quote into dynamic SQL, and a wrong one gets one clear
-- message listing the tables there are. SECURITY DEFINER: clients' calls
-- (job_view, cancel_job, queue_position) check their table too, without a
-- right on rhpool.tools.
create or replace function rhpool.require_job_table(job_table text, caller text)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from rhpool.tools t where t.job_table = require_job_table.job_table) then
    raise exception '%: % is not a job table (known: %)', caller, coalesce(quote_literal(require_job_table.job_table), 'NULL'),
      (select string_agg(t.job_table, ', ' order by t.job_table) from rhpool.tools t)
      using errcode = 'invalid_parameter_value';
  end if;
end
$$;

-- A batch function's arrays (one entry per item, aligned) must be as long as
-- each other; a wrong call is refused with every array's length, by name,
-- before anything is written. sizes: cardinality() of each, in names' order.
create or replace function rhpool.require_one_entry_each(caller text, item text, names text[], sizes integer[])
returns void
language plpgsql
immutable
as $$
begin
  if exists (select 1 from unnest(require_one_entry_each.sizes) s where s is distinct from require_one_entry_each.sizes[1]) then
    raise exception '%: every array must have one entry per % (%)', caller, item,
      (select string_agg(n || ' ' || coalesce(s::text, 'NULL'), ', ' order by k)
       from unnest(require_one_entry_each.names, require_one_entry_each.sizes) with ordinality u(n, s, k))
      using errcode = 'invalid_parameter_value';
  end if;
end
$$;

-- The relation of a job table (null: not a job table).
--
-- The functions on a job's path are PL/pgSQL, not SQL: PostgreSQL plans a
-- non-inlined SQL function's statements again in every transaction that calls
-- it, and a statement over rhpool.job_rows plans all five relations of the
-- inheritance tree (half a millisecond, several times per job; bench/profile.ts).
-- PL/pgSQL keeps each statement's plan for the session.
create or replace function rhpool.job_relation(job_table text)
returns regclass
language plpgsql
stable
as $$
begin
  return (select t.relation from rhpool.tools t where t.job_table = job_relation.job_table);
end
$$;

-- What the dispatcher builds a tool's request from (src/tools/node-info.ts's
-- ToolDefinition): the one shape both claim_for_dispatcher and claimed_job
-- answer. A single SQL expression, inlined where it is used.
create or replace function rhpool.tool_definition(tool rhpool.tools)
returns jsonb
language sql
immutable
as $$
  select jsonb_build_object('tool', (tool).tool, 'app', (tool).app, 'node_map', (tool).node_map, 'instance_type', (tool).instance_type)
$$;

-- Marks this transaction as one of rhpool's transitions: the product's
-- scheduling columns may be written (rhpool_job_guard lets them through).
-- Only rhpool may write them at all (the client guard decides by role first),
-- so the mark only tells rhpool's transitions from a hand-written UPDATE.
create or replace function rhpool.begin_transition()
returns void
language plpgsql
volatile
as $$
begin
  perform set_config('rhpool.transition', 'on', true);
end
$$;

-- A job's product row, locked, as jsonb (null when missing). Static: the
-- parent table reaches every job table.
create or replace function rhpool.lock_job(job_table text, job_id uuid)
returns jsonb
language plpgsql
volatile
as $$
declare
  relation regclass := rhpool.job_relation(lock_job.job_table);
  job jsonb;
begin
  select to_jsonb(j) into job from rhpool.job_rows j
   where j.tableoid = relation and j.id = lock_job.job_id
   for update;
  return job;
end
$$;

-- A job's product row as jsonb, read without a lock (null when missing): for
-- a decision that a later, locked step makes again (a held callback is only a
-- hint until it is confirmed), so it need not wait for, or write, a row lock.
create or replace function rhpool.read_job(job_table text, job_id uuid)
returns jsonb
language plpgsql
stable
as $$
declare
  relation regclass := rhpool.job_relation(read_job.job_table);
  job jsonb;
begin
  select to_jsonb(j) into job from rhpool.job_rows j
   where j.tableoid = relation and j.id = read_job.job_id;
  return job;
end
$$;

-- The other job, in any job table, that already holds this RunningHub task id
-- ('table/id'), or null. A task id names one task: two jobs holding one id
-- could not be told apart by query, cancel or reconciliation, so the second is
-- never given it (each table's unique index would refuse it anyway).
create or replace function rhpool.task_id_holder(task_id text, job_table text, job_id uuid)
returns text
language plpgsql
stable
as $$
declare
  relation regclass := rhpool.job_relation(task_id_holder.job_table);
begin
  return (
    select (select t.job_table from rhpool.tools t where t.relation = j.tableoid) || '/' || j.id
    from rhpool.job_rows j
    where j.task_id = task_id_holder.task_id
      and not (j.tableoid = relation and j.id = task_id_holder.job_id)
    limit 1);
end
$$;

-- The end of a run: the job is completed, failed or cancelled. In one
-- transaction the run is deleted (its slot with it), the product's row gets
-- its status and result, and the one terminal event is written. Returns false
-- when the job has no run (already finished).
create or replace function rhpool.settle_job(
  job_table text, job_id uuid, status text,
  error_code text default null, error_message text default null,
  outputs jsonb default null, output_url text default null, usage jsonb default null,
  cost_amount numeric default null, cost_field text default null, cost_unit text default null, task_id text default null
)
returns boolean
language plpgsql
volatile
as $$
declare
  -- The job table, looked up once: in the WHERE clause it would be called for each table of the tree.
  relation regclass := rhpool.job_relation(settle_job.job_table);
  ended rhpool.runs;
  row_after record;
begin
  if not (settle_job.status = any (rhpool.terminal_statuses())) then
    raise exception 'settle_job: status must be completed, failed or cancelled, got %', coalesce(quote_literal(settle_job.status), 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;
  delete from rhpool.runs r where r.job_table = settle_job.job_table and r.job_id = settle_job.job_id
  returning r.* into ended;
  if ended.job_id is null then
    return false;
  end if;
  perform rhpool.begin_transition();
  update rhpool.job_rows j set
    status = settle_job.status,
    attempts = ended.attempts,
    task_id = coalesce(j.task_id, ended.task_id, settle_job.task_id),
    outputs = coalesce(settle_job.outputs, j.outputs),
    output_url = coalesce(settle_job.output_url, j.output_url),
    rh_usage = coalesce(settle_job.usage, j.rh_usage),
    rh_cost = coalesce(settle_job.cost_amount, j.rh_cost),
    rh_cost_field = coalesce(settle_job.cost_field, j.rh_cost_field),
    rh_cost_unit = coalesce(settle_job.cost_unit, j.rh_cost_unit),
    -- A job that completes keeps no error from earlier tries.
    error_code = case when settle_job.status = 'completed' then null else coalesce(settle_job.error_code, j.error_code) end,
    error_message = case when settle_job.status = 'completed' then null else coalesce(settle_job.error_message, j.error_message) end,
    completed_at = coalesce(j.completed_at, now()),
    updated_at = now()
  where j.tableoid = relation and j.id = settle_job.job_id
  returning j.api_account, j.user_id, j.task_id, j.error_code, j.rh_cost, j.rh_cost_field, j.rh_cost_unit into row_after;
  insert into rhpool.job_events (job_table, job_id, status, api_account, user_id, task_id, error_code, rh_cost, rh_cost_field, rh_cost_unit)
  values (settle_job.job_table, settle_job.job_id, settle_job.status, row_after.api_account, row_after.user_id::text, row_after.task_id,
          row_after.error_code, row_after.rh_cost, row_after.rh_cost_field, row_after.rh_cost_unit);
  -- What the dashboard shows each account spent (027-spend-by-hour.sql).
  if settle_job.status = 'completed' and row_after.api_account is not null then
    insert into rhpool.spend_journal (account, hour, money)
    values (row_after.api_account, date_trunc('hour', now()),
            case when row_after.rh_cost_unit = 'money' then coalesce(row_after.rh_cost, 0) else 0 end);
  end if;
  if ended.account is not null then
    perform pg_notify('rhpool_wakeup', 'slot');
  end if;
  return true;
end
$$;

-- Back to the queue (released, retried, recovered): the run loses its account
-- and its claim; the product's row shows it queued again. fifo_at stays: the
-- job keeps its place.
create or replace function rhpool.requeue_run(
  job_table text, job_id uuid, attempts integer, not_before timestamptz,
  error_code text default null, error_message text default null, forget_task boolean default false
)
returns void
language plpgsql
volatile
as $$
declare
  -- The job table, looked up once: in the WHERE clause it would be called for each table of the tree.
  relation regclass := rhpool.job_relation(requeue_run.job_table);
begin
  update rhpool.runs r set status = 'queued', account = null, claim_token = null, holder = null, lease_expires_at = null,
         attempts = requeue_run.attempts, not_before = requeue_run.not_before, checked_at = null,
         task_id = case when requeue_run.forget_task then null else r.task_id end
   where r.job_table = requeue_run.job_table and r.job_id = requeue_run.job_id;
  perform rhpool.begin_transition();
  update rhpool.job_rows j set status = 'queued', api_account = null, claimed_at = null,
         attempts = requeue_run.attempts, not_before = requeue_run.not_before,
         task_id = case when requeue_run.forget_task then null else j.task_id end,
         error_code = requeue_run.error_code, error_message = requeue_run.error_message, updated_at = now()
   where j.tableoid = relation and j.id = requeue_run.job_id;
  -- 'slot', not 'queued': the run gave its account's slot back, and a dispatcher
  -- whose accounts were all full listens for exactly that (rhpool.slot_free_among).
  perform pg_notify('rhpool_wakeup', 'slot');
end
$$;

-- BEFORE INSERT, UPDATE or DELETE on every job table (after the client
-- guard, 015-trust.sql, has decided what the writer may touch).
--
--  * insert: a job starts pending or queued; its run is created, its place in
--    the queue is the row's created_at;
--  * pending → queued (the client's upload finished): the run is queued, its
--    place is now;
--  * a cancellation request (cancel_requested_at): a job not yet at RunningHub
--    is cancelled at once; one at RunningHub waits for the dispatcher;
--  * anything else on status, the account or the other scheduling columns,
--    outside rhpool's transitions, is refused: rhpool.runs owns them.
--  * delete: the run goes with the row.
--
-- SECURITY DEFINER: it writes rhpool.runs, which clients may not.
create or replace function rhpool.job_guard()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  -- tg_table_name is of type name (collation "C"): compared with rhpool's text
  -- columns as it is, it defeats their indexes.
  this_table text := tg_table_name::text collate "default";
  run rhpool.runs;
begin
  if tg_op = 'INSERT' then
    if new.status is null or new.status not in ('pending', 'queued') then
      raise exception '%.status: a new job must start as ''pending'' or ''queued'', not %',
        tg_table_name, coalesce(quote_literal(new.status), 'NULL')
        using errcode = 'check_violation', column = 'status', table = tg_table_name;
    end if;
    new.api_account := null;
    new.updated_at := now();
    insert into rhpool.runs (job_table, job_id, status, priority, fifo_at, not_before, attempts, max_attempts)
    values (this_table, new.id, new.status, coalesce(new.priority, 0), new.created_at, new.not_before,
            coalesce(new.attempts, 0), coalesce(new.max_attempts, 5));
    if new.status = 'queued' then
      perform pg_notify('rhpool_wakeup', 'queued');
    end if;
    return new;
  end if;

  if tg_op = 'DELETE' then
    delete from rhpool.runs r where r.job_table = this_table and r.job_id = old.id;
    if found and old.status in ('claimed', 'submitting', 'outcome_unknown', 'running') then
      perform pg_notify('rhpool_wakeup', 'slot');
    end if;
    return old;
  end if;

  if current_setting('rhpool.transition', true) = 'on' then
    return new;
  end if;

  if new.id is distinct from old.id then
    raise exception '%.id: a job''s id never changes (job %)', tg_table_name, old.id
      using errcode = 'check_violation', column = 'id', table = tg_table_name;
  end if;

  -- A cancellation request on a job not yet at RunningHub cancels it at once.
  if old.cancel_requested_at is null and new.cancel_requested_at is not null and new.status = old.status
     and not (old.status = any (rhpool.terminal_statuses())) then
    select r.* into run from rhpool.runs r where r.job_table = this_table and r.job_id = old.id for update;
    if run.status in ('pending', 'queued', 'claimed') then
      delete from rhpool.runs r where r.job_table = this_table and r.job_id = old.id;
      new.status := 'cancelled';
      new.error_code := 'CANCELLED';
      new.error_message := coalesce(new.error_message, 'cancelled by request');
      new.completed_at := now();
      new.updated_at := now();
      insert into rhpool.job_events (job_table, job_id, status, api_account, user_id, task_id, error_code, rh_cost, rh_cost_field, rh_cost_unit)
      values (this_table, new.id, 'cancelled', new.api_account, new.user_id::text, new.task_id, new.error_code, new.rh_cost, new.rh_cost_field, new.rh_cost_unit);
      if run.status = 'claimed' then
        perform pg_notify('rhpool_wakeup', 'slot');
      end if;
      return new;
    end if;
    update rhpool.runs r set cancel_requested_at = new.cancel_requested_at where r.job_table = this_table and r.job_id = old.id;
  end if;

  if new.status is distinct from old.status then
    if old.status = any (rhpool.terminal_statuses()) then
      raise exception '%.status: job % is already % and cannot become %; a finished job is final',
        tg_table_name, old.id, old.status, coalesce(new.status, 'NULL')
        using errcode = 'check_violation', column = 'status', table = tg_table_name;
    end if;
    if not (old.status = 'pending' and new.status = 'queued') then
      raise exception '%.status: job % cannot move from % to % by hand; rhpool''s transitions move jobs (a client may only queue its pending job, and cancel with rhpool.cancel_job)',
        tg_table_name, old.id, old.status, coalesce(new.status, 'NULL')
        using errcode = 'check_violation', column = 'status', table = tg_table_name;
    end if;
    update rhpool.runs r set status = 'queued', fifo_at = clock_timestamp()
     where r.job_table = this_table and r.job_id = old.id and r.status = 'pending';
    perform pg_notify('rhpool_wakeup', 'queued');
  end if;

  if (new.api_account, new.task_id, new.priority, new.attempts, new.max_attempts, new.not_before, new.claimed_at, new.submitted_at)
     is distinct from (old.api_account, old.task_id, old.priority, old.attempts, old.max_attempts, old.not_before, old.claimed_at, old.submitted_at) then
    raise exception '%: job %''s scheduling columns (api_account, task_id, priority, attempts, max_attempts, not_before, claimed_at, submitted_at) are written only by rhpool''s transitions; rhpool.runs owns them',
      tg_table_name, old.id
      using errcode = 'check_violation', table = tg_table_name;
  end if;

  new.updated_at := now();
  return new;
end
$$;

-- The parent table holds no rows of its own.
create or replace function rhpool.job_rows_refuse_insert()
returns trigger
language plpgsql
as $$
begin
  raise exception 'rhpool.job_rows: insert into a job table (public.upscaler_jobs, ...), not into rhpool.job_rows'
    using errcode = 'feature_not_supported';
end
$$;

create or replace trigger job_rows_refuse_insert
  before insert on rhpool.job_rows
  for each row execute function rhpool.job_rows_refuse_insert();
