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

-- Unconfirmed callbacks whose job is in flight, for the dispatcher to check.
create or replace function rhpool.unconfirmed_callbacks(max_rows integer default 50)
returns table (delivery_id bigint, job_table text, job_id uuid, api_account text, task_id text)
language sql
stable
as $$
  select d.id, d.job_table, d.job_id, j.api_account, coalesce(j.task_id, d.task_id)
  from rhpool.webhook_deliveries d
  join rhpool.jobs j on j.job_table = d.job_table and j.id = d.job_id
  where d.outcome = 'unconfirmed' and d.resolved_at is null
    and coalesce(j.task_id, d.task_id) is not null
  order by d.received_at
  limit max_rows
$$;

-- RunningHub's answer about an unconfirmed callback. A final status is applied
-- (RunningHub's content, not the callback's); anything else resolves the
-- delivery as refuted and leaves the job to its normal course.
create or replace function rhpool.resolve_unconfirmed(delivery_id bigint, callback jsonb)
returns text
language plpgsql
volatile
as $$
declare
  delivery record;
  applied_outcome text;
begin
  select d.id, d.job_table, d.job_id, d.task_id into delivery
  from rhpool.webhook_deliveries d where d.id = resolve_unconfirmed.delivery_id and d.resolved_at is null
  for update;
  if not found then
    return null;
  end if;
  if resolve_unconfirmed.callback is null or coalesce(resolve_unconfirmed.callback ->> 'status', '') not in ('SUCCESS', 'FAILED', 'CANCEL') then
    update rhpool.webhook_deliveries d set resolved_at = now(), resolution = 'refuted: RunningHub says ' || coalesce(resolve_unconfirmed.callback ->> 'status', 'nothing')
     where d.id = delivery.id;
    return 'refuted';
  end if;
  applied_outcome := rhpool.apply_reconciliation(delivery.job_table, delivery.job_id, delivery.task_id, resolve_unconfirmed.callback);
  update rhpool.webhook_deliveries d set resolved_at = now(), resolution = 'confirmed: ' || coalesce(applied_outcome, 'no job') where d.id = delivery.id;
  return applied_outcome;
end
$$;
