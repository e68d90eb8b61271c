-- Wakeups and terminal events. A job that became claimable or a slot that was
-- freed is announced by the transition that did it (pg_notify('rhpool_wakeup'),
-- folded to one per transaction by PostgreSQL); NOTIFY is only a hint
-- (dispatchers also poll). Every job's end writes a terminal event
-- (rhpool.job_events, by settle_job in 020-job-rows.sql); the product's refund
-- worker reads and marks them here (granted to rhpool_events in 990-grants.sql).

-- A terminal event wakes whoever hangs refunds and notifications on them.
create or replace function rhpool.notify_job_event()
returns trigger
language plpgsql
as $$
begin
  perform pg_notify('rhpool_job_events', '');
  return null;
end
$$;

create or replace trigger job_events_notify
  after insert on rhpool.job_events
  for each statement execute function rhpool.notify_job_event();

-- The terminal events not yet processed, oldest first.
create or replace function rhpool.unprocessed_events(max_events integer default 100)
returns setof rhpool.job_events
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select e.* from rhpool.job_events e where e.processed_at is null order by e.id limit max_events
$$;

-- Marks an event processed; true the first time, false when it already was
-- (so a worker that retries learns it did nothing twice). Call it in the
-- transaction that refunds, so both happen or neither.
create or replace function rhpool.mark_event_processed(event_id bigint)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  marked boolean;
begin
  if not exists (select 1 from rhpool.job_events e where e.id = event_id) then
    raise exception 'mark_event_processed: no event %', event_id using errcode = 'no_data_found';
  end if;
  update rhpool.job_events e set processed_at = now() where e.id = event_id and e.processed_at is null;
  get diagnostics marked = row_count;
  return marked;
end
$$;
