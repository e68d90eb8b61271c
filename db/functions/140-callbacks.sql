-- Applies one end-of-task callback, already verified (signed job reference)
-- and parsed, in one short transaction: the delivery is recorded, and the job
-- is finished (slot freed, terminal event written) when it is the one RunningHub
-- ran. Duplicates, late and out-of-order deliveries change nothing.
--
-- status: 'SUCCESS', 'FAILED' or 'CANCEL' (RunningHub's final states).
-- Returns the recorded outcome.
create or replace function rhpool.apply_callback(
  job_table text, job_id uuid, attempt integer, task_id text, status text,
  outputs jsonb, usage jsonb, error_code text, error_message text, body text
)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(apply_callback.job_table, apply_callback.job_id);
  outcome text;
  detail text;
  finished text;
begin
  if status not in ('SUCCESS', 'FAILED', 'CANCEL') then
    raise exception 'apply_callback: status must be SUCCESS, FAILED or CANCEL, got %', coalesce(quote_literal(status), 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;

  if job is null then
    outcome := 'kept';
    detail := 'no such job (yet)';
  elsif (job ->> 'attempts')::integer <> apply_callback.attempt
        and not (job ->> 'status' = any (rhpool.terminal_statuses())) then
    outcome := case when (job ->> 'attempts')::integer < apply_callback.attempt then 'kept' else 'stale_attempt' end;
    detail := format('callback for attempt %s, job is on attempt %s', apply_callback.attempt, job ->> 'attempts');
  elsif job ->> 'task_id' is not null and apply_callback.task_id is not null and job ->> 'task_id' <> apply_callback.task_id then
    outcome := 'task_mismatch';
    detail := format('job runs task %s, callback is for task %s', job ->> 'task_id', apply_callback.task_id);
  elsif job ->> 'status' = any (rhpool.terminal_statuses()) then
    outcome := 'duplicate';
    detail := 'job already ' || (job ->> 'status');
  elsif job ->> 'status' not in ('submitting', 'outcome_unknown', 'running') then
    -- Not yet (or no longer) at RunningHub as far as the database knows: keep
    -- the callback; maintenance applies it once the job catches up.
    outcome := 'kept';
    detail := 'job is ' || (job ->> 'status');
  else
    if status = 'CANCEL' then
      finished := rhpool.finish_cancel(apply_callback.job_table, apply_callback.job_id);
      if apply_callback.task_id is not null then
        perform rhpool.set_job_fields(apply_callback.job_table, apply_callback.job_id, jsonb_build_object('task_id', coalesce(job ->> 'task_id', apply_callback.task_id)));
      end if;
    else
      finished := rhpool.finish_job(apply_callback.job_table, apply_callback.job_id, apply_callback.task_id, status = 'SUCCESS',
        apply_callback.outputs, apply_callback.usage, apply_callback.error_code, apply_callback.error_message);
    end if;
    outcome := 'applied';
    detail := 'job ' || finished;
  end if;

  insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body)
  values (apply_callback.job_table, apply_callback.job_id, apply_callback.attempt, apply_callback.task_id, 'TASK_END', outcome, 200, detail,
          left(apply_callback.body, 65536));
  return outcome;
end
$$;

-- A delivery that changed nothing (forged, malformed, oversized, ignored),
-- recorded for inspection.
create or replace function rhpool.record_rejected_delivery(
  outcome text, http_status integer, detail text, body text,
  job_table text default null, job_id uuid default null, attempt integer default null, task_id text default null, event text default null
)
returns void
language sql
volatile
as $$
  insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body)
  values (record_rejected_delivery.job_table, record_rejected_delivery.job_id, record_rejected_delivery.attempt,
          record_rejected_delivery.task_id, record_rejected_delivery.event, record_rejected_delivery.outcome,
          record_rejected_delivery.http_status, left(record_rejected_delivery.detail, 1000), left(record_rejected_delivery.body, 65536))
$$;
