-- The trust boundary on the job tables: what a client (any role that is not
-- rhpool itself) may write. Grants live in 990-grants.sql.
--
-- Who is rhpool: the owner of schema rhpool (the role that migrates, and the
-- one the service runs as), a role with its privileges, or a superuser.
-- rhpool's SECURITY DEFINER functions and triggers run as that owner, so their
-- writes pass; a client's direct write runs as the client's role. The test is
-- current_user, which a client cannot forge (a GUC flag could be set with
-- set_config by anyone).
--
-- BEFORE INSERT/UPDATE/DELETE (and TRUNCATE) on every job table, fired before rhpool_job_guard
-- (triggers fire in name order); the row trigger's WHEN clause already skips
-- rhpool's own writes (050-attach-job-tables.sql), the check below stays for
-- the TRUNCATE trigger and as the rule itself. SECURITY INVOKER on purpose:
-- current_user must be the writer. It reads only the row and the catalog,
-- which every role may.
--
-- A client may insert its job (pending or queued), set the product's own
-- columns, move its pending job to queued, and ask for cancellation (what
-- rhpool.cancel_job writes: cancel_requested_at, and a reason in
-- error_message when there is none). Everything else rhpool owns is refused,
-- naming the columns, and the statement changes nothing.
--
-- Its search_path is pinned although it runs as the writer: with the
-- caller's, a client could put its own pg_has_role (or operator) ahead of
-- pg_catalog and pass for rhpool.
create or replace function rhpool.job_client_guard()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  -- Columns rhpool writes: scheduling, attempts, timing, results, cost, errors.
  owned text[] := array[
    'api_account', 'task_id', 'attempts', 'max_attempts', 'not_before', 'claimed_at', 'submitted_at', 'started_at',
    'completed_at', 'outputs', 'output_url', 'rh_usage', 'rh_cost', 'rh_cost_field', 'rh_cost_unit', 'error_code',
    'error_message', 'cancel_requested_at', 'waited_in_queue', 'queue_wait_seconds', 'updated_at'];
  -- A new row's value for those that have a default other than null.
  defaults jsonb := '{"attempts": 0, "max_attempts": 5, "waited_in_queue": false, "priority": 0}'::jsonb;
  before_row jsonb;
  after_row jsonb;
  refused text[];
  cancel_request boolean;
begin
  if pg_has_role(current_user, (select n.nspowner from pg_catalog.pg_namespace n where n.nspname = 'rhpool'), 'usage') then
    return case when tg_op = 'DELETE' then old else new end;
  end if;

  if tg_op = 'TRUNCATE' then
    -- TRUNCATE skips row triggers and RLS: the queue and the slots would keep
    -- jobs that are gone (Supabase grants TRUNCATE on new tables to its API roles).
    raise exception '%: % may not truncate a job table', tg_table_name, current_user
      using errcode = 'insufficient_privilege', table = tg_table_name;
  end if;

  if tg_op = 'DELETE' then
    -- Deleting a job in flight would free its slot while RunningHub still runs
    -- the task: the account would go over its limit.
    if old.status in ('claimed', 'submitting', 'outcome_unknown', 'running') then
      raise exception '%: job % is % and cannot be deleted by %; cancel it with rhpool.cancel_job',
        tg_table_name, old.id, old.status, current_user
        using errcode = 'insufficient_privilege', table = tg_table_name;
    end if;
    return old;
  end if;

  after_row := to_jsonb(new);
  if tg_op = 'INSERT' then
    select array_agg(c order by c) into refused
    -- priority too: a client choosing its own would choose its place in the global queue.
    from unnest(owned || array['priority']) c
    where c <> 'updated_at' and after_row -> c is distinct from coalesce(defaults -> c, 'null'::jsonb);
    if refused is not null then
      raise exception '%: % may not set % on a new job; rhpool sets them',
        tg_table_name, current_user, array_to_string(refused, ', ')
        using errcode = 'insufficient_privilege', table = tg_table_name, column = refused[1];
    end if;
    -- The job's place in the queue is the time rhpool received it, whatever
    -- the client wrote (the column default, kept for the owner and tests).
    new.created_at := clock_timestamp();
    return new;
  end if;

  before_row := to_jsonb(old);
  cancel_request := old.cancel_requested_at is null and new.cancel_requested_at is not null
    and not (old.status in ('completed', 'failed', 'cancelled'));
  select array_agg(c order by c) into refused
  from unnest(owned || array['id', 'created_at', 'priority']) c
  where after_row -> c is distinct from before_row -> c
    and not (cancel_request and c = 'cancel_requested_at')
    and not (cancel_request and c = 'error_message' and old.error_message is null);
  if refused is not null then
    raise exception '%: % may not change % of job %; rhpool owns them',
      tg_table_name, current_user, array_to_string(refused, ', '), old.id
      using errcode = 'insufficient_privilege', table = tg_table_name, column = refused[1];
  end if;
  if new.status is distinct from old.status and not (old.status = 'pending' and new.status = 'queued') then
    raise exception '%.status: % may not move job % from % to %; a client may only queue its pending job (cancel with rhpool.cancel_job)',
      tg_table_name, current_user, old.id, old.status, coalesce(new.status, 'NULL')
      using errcode = 'insufficient_privilege', column = 'status', table = tg_table_name;
  end if;
  if cancel_request then
    -- The time of the request is rhpool's.
    new.cancel_requested_at := now();
  end if;
  return new;
end
$$;
