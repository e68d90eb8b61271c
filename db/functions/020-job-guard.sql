-- BEFORE trigger on every job table: the state machine.
--
-- Refuses impossible moves with a message naming the job, the field and the
-- move; terminal states are final. A job may enter an in-flight state only
-- while it holds a slot on its api_account (slots are only handed out by
-- claim_account_slot() under the admission lock), so no client can push an
-- account over its limit by writing a status by hand.
--
-- SECURITY DEFINER: it reads rhpool.slots, which clients may not. What a
-- client may write at all is decided before, by rhpool_job_client_guard
-- (015-trust.sql), which runs as the writer.
create or replace function rhpool.job_guard()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  allowed text[];
  -- tg_table_name is of type name (collation "C"): compared with rhpool's text
  -- columns as it is, it defeats their indexes. A text value in the default
  -- collation keeps lookups on the primary keys.
  this_table text := tg_table_name::text collate "default";
begin
  if tg_op = 'INSERT' then
    if new.status is null or new.status not in ('pending', 'queued') then
      raise exception '%.status: a new job must start as ''pending'' or ''queued'', not %',
        tg_table_name, coalesce(quote_literal(new.status), 'NULL')
        using errcode = 'check_violation', column = 'status', table = tg_table_name;
    end if;
    new.api_account := null;
    new.updated_at := now();
    return new;
  end if;

  -- A cancellation request (rhpool.cancel_job, or the client's own write of
  -- cancel_requested_at) on a job not yet at RunningHub cancels it at once;
  -- one at RunningHub waits for the dispatcher to cancel the task.
  if old.cancel_requested_at is null and new.cancel_requested_at is not null
     and old.status in ('pending', 'queued', 'claimed') and new.status = old.status then
    new.status := 'cancelled';
    new.error_code := 'CANCELLED';
    new.error_message := coalesce(new.error_message, 'cancelled by request');
  end if;

  if new.status is distinct from old.status then
    allowed := case old.status
      when 'pending' then array['queued', 'cancelled']
      when 'queued' then array['claimed', 'pending', 'cancelled']
      when 'claimed' then array['submitting', 'queued', 'failed', 'cancelled']
      when 'submitting' then array['running', 'queued', 'outcome_unknown', 'completed', 'failed', 'cancelled']
      -- queued again from flight: only rhpool.retry_failed_task, once the task
      -- RunningHub ran has ended on a failure of its own machine.
      when 'outcome_unknown' then array['running', 'queued', 'completed', 'failed', 'cancelled']
      when 'running' then array['queued', 'completed', 'failed', 'cancelled']
      else array[]::text[]
    end;
    if old.status = any (rhpool.terminal_statuses()) then
      raise exception '%.status: job % is already % and cannot become %; a finished job is final',
        tg_table_name, old.id, old.status, coalesce(new.status, 'NULL')
        using errcode = 'check_violation', column = 'status', table = tg_table_name;
    end if;
    if new.status is null or not (new.status = any (allowed)) then
      raise exception '%.status: job % cannot move from % to %', tg_table_name, old.id, old.status, coalesce(new.status, 'NULL')
        using errcode = 'check_violation', column = 'status', table = tg_table_name,
              hint = format('from %s a job may become: %s', old.status, array_to_string(allowed, ', '));
    end if;

    if new.status = 'queued' then
      -- Back in the queue (released or retried): no account until claimed again.
      new.api_account := null;
      new.claimed_at := null;
    end if;
    if new.status = 'claimed' then
      new.claimed_at := now();
      new.queue_wait_seconds := greatest(0, extract(epoch from now() - new.created_at))::integer;
      new.waited_in_queue := new.queue_wait_seconds > 0;
    end if;
    if new.status = 'submitting' then
      new.submitted_at := now();
      new.attempts := old.attempts + 1;
    end if;
    if new.status = 'running' and new.started_at is null then
      new.started_at := now();
    end if;
    if new.status = any (rhpool.terminal_statuses()) then
      new.completed_at := coalesce(new.completed_at, now());
    end if;
  end if;

  if new.status = any (rhpool.in_flight_statuses())
     and (new.status is distinct from old.status or new.api_account is distinct from old.api_account)
     and not exists (
       select 1 from rhpool.slots s
       where s.job_table = this_table and s.job_id = new.id and s.account = new.api_account
     ) then
    raise exception '%.status: job % cannot be % without a slot on account %; jobs enter flight only through rhpool.claim_account_slot()',
      tg_table_name, new.id, new.status, coalesce(new.api_account, 'NULL')
      using errcode = 'check_violation', column = 'status', table = tg_table_name;
  end if;

  new.updated_at := now();
  return new;
end
$$;
