-- AFTER trigger on every job table: keeps the global queue, the slots and the
-- terminal events in step with the job's status, in the same transaction.
-- SECURITY DEFINER: a client's insert or update writes rhpool's tables only
-- through it.
create or replace function rhpool.job_sync()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  was_status text := case when tg_op = 'UPDATE' then old.status end;
  -- tg_table_name is of type name (collation "C"); compared as it is with the
  -- text key of rhpool.queue it forces a sequential scan of the whole queue
  -- on every claim (found by bench/claim.ts). The default collation keeps the
  -- primary key usable.
  this_table text := tg_table_name::text collate "default";
begin
  -- The global queue holds exactly the queued jobs, with their FIFO keys.
  if new.status = 'queued' then
    insert into rhpool.queue (job_table, job_id, priority, created_at, not_before)
    values (this_table, new.id, new.priority, new.created_at, new.not_before)
    on conflict (job_table, job_id) do update
      set priority = excluded.priority, created_at = excluded.created_at, not_before = excluded.not_before
      where (rhpool.queue.priority, rhpool.queue.created_at, rhpool.queue.not_before)
            is distinct from (excluded.priority, excluded.created_at, excluded.not_before);
  elsif was_status = 'queued' then
    delete from rhpool.queue where job_table = this_table and job_id = new.id;
  end if;

  -- Leaving flight frees the slot, whatever the reason.
  if was_status = any (rhpool.in_flight_statuses()) and not (new.status = any (rhpool.in_flight_statuses())) then
    delete from rhpool.slots where job_table = this_table and job_id = new.id;
  end if;

  -- Exactly one terminal event per job (the unique key makes a second one impossible).
  if new.status = any (rhpool.terminal_statuses()) and was_status is distinct from new.status then
    insert into rhpool.job_events (job_table, job_id, status, api_account, user_id, task_id, error_code, rh_cost, rh_cost_field, rh_cost_unit)
    values (this_table, new.id, new.status, new.api_account, new.user_id::text, new.task_id, new.error_code, new.rh_cost, new.rh_cost_field, new.rh_cost_unit);
  end if;
  return null;
end
$$;

-- Removing a job row must not strand its queue entry or its slot.
create or replace function rhpool.job_forget()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  this_table text := tg_table_name::text collate "default";
begin
  delete from rhpool.queue where job_table = this_table and job_id = old.id;
  delete from rhpool.slots where job_table = this_table and job_id = old.id;
  return null;
end
$$;
