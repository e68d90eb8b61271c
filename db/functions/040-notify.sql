-- Wake the dispatchers: a job became claimable or a slot was freed. NOTIFY is
-- only a hint (dispatchers also poll), and one per statement is enough.
create or replace function rhpool.notify_wakeup()
returns trigger
language plpgsql
as $$
begin
  perform pg_notify('rhpool_wakeup', tg_table_name);
  return null;
end
$$;

create or replace function rhpool.notify_job_event()
returns trigger
language plpgsql
as $$
begin
  perform pg_notify('rhpool_job_events', '');
  return null;
end
$$;

create or replace trigger queue_wakeup
  after insert on rhpool.queue
  for each statement execute function rhpool.notify_wakeup();

create or replace trigger slots_freed_wakeup
  after delete on rhpool.slots
  for each statement execute function rhpool.notify_wakeup();

create or replace trigger job_events_notify
  after insert on rhpool.job_events
  for each statement execute function rhpool.notify_job_event();
