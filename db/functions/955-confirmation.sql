-- (After 900: it reads the rhpool.jobs view.)
-- Confirmed callbacks (RHPOOL_CONFIRM_CALLBACKS): a callback's content is a
-- claim. The webhook records it as 'unconfirmed' (one short transaction, no
-- outbound HTTP on the request path) and wakes the dispatchers, which ask
-- RunningHub and apply RunningHub's own answer.

create or replace function rhpool.hold_callback(job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(hold_callback.job_table, hold_callback.job_id);
begin
  if job is not null and job ->> 'status' = any (rhpool.terminal_statuses()) then
    insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback)
    values (hold_callback.job_table, hold_callback.job_id, hold_callback.attempt, hold_callback.task_id, 'TASK_END', 'duplicate', 200,
            'job already ' || (job ->> 'status'), left(hold_callback.body, 65536), hold_callback.callback);
    return 'duplicate';
  end if;
  insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback)
  values (hold_callback.job_table, hold_callback.job_id, hold_callback.attempt, hold_callback.task_id, 'TASK_END', 'unconfirmed', 200,
          'waiting for RunningHub to confirm with query', left(hold_callback.body, 65536), hold_callback.callback);
  perform pg_notify('rhpool_confirm', '');
  return 'unconfirmed';
end
$$;

-- Superseded by rhpool.claim_unconfirmed / rhpool.confirm_callback (970):
-- each held callback is leased to one confirming round and applied to the
-- attempt it was for. Dropped here so an upgraded database does not keep them.
drop function if exists rhpool.unconfirmed_callbacks(integer);
drop function if exists rhpool.resolve_unconfirmed(bigint, jsonb);
