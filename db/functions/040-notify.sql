-- Wakeups. A job that became claimable or a slot that was freed is announced
-- by the transition that did it (pg_notify('rhpool_wakeup'), folded to one per
-- transaction by PostgreSQL); NOTIFY is only a hint (dispatchers also poll).
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
