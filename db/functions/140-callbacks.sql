-- The decision for one TASK_END: is it this job's, and is it news? Finishes
-- the job when it is; records nothing (the callers do). Shared by the webhook
-- and by maintenance, which re-applies kept callbacks.
create or replace function rhpool.apply_task_end(
  job_table text, job_id uuid, attempt integer, task_id text, callback jsonb,
  out outcome text, out detail text
)
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(apply_task_end.job_table, apply_task_end.job_id);
  status text := callback ->> 'status';
  finished text;
begin
  if status is null or status not in ('SUCCESS', 'FAILED', 'CANCEL') then
    raise exception 'apply_task_end: callback status must be SUCCESS, FAILED or CANCEL, got %', coalesce(quote_literal(status), 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;

  if job is null then
    outcome := 'kept';
    detail := 'no such job (yet)';
  elsif (job ->> 'attempts')::integer <> apply_task_end.attempt
        and not (job ->> 'status' = any (rhpool.terminal_statuses())) then
    outcome := case when (job ->> 'attempts')::integer < apply_task_end.attempt then 'kept' else 'stale_attempt' end;
    detail := format('callback for attempt %s, job is on attempt %s', apply_task_end.attempt, job ->> 'attempts');
  elsif job ->> 'task_id' is not null and apply_task_end.task_id is not null and job ->> 'task_id' <> apply_task_end.task_id then
    outcome := 'task_mismatch';
    detail := format('job runs task %s, callback is for task %s', job ->> 'task_id', apply_task_end.task_id);
  elsif job ->> 'task_id' is null and apply_task_end.task_id is not null
        and rhpool.task_id_holder(apply_task_end.task_id, apply_task_end.job_table, apply_task_end.job_id) is not null then
    -- The callback names a task another job holds: it cannot be this job's.
    outcome := 'task_mismatch';
    detail := format('task %s belongs to %s', apply_task_end.task_id,
      rhpool.task_id_holder(apply_task_end.task_id, apply_task_end.job_table, apply_task_end.job_id));
  elsif job ->> 'status' = any (rhpool.terminal_statuses()) then
    outcome := 'duplicate';
    detail := 'job already ' || (job ->> 'status');
  elsif job ->> 'status' not in ('submitting', 'outcome_unknown', 'running') then
    -- Not (yet) at RunningHub as far as the database knows: keep the
    -- callback; maintenance applies it once the job catches up.
    outcome := 'kept';
    detail := 'job is ' || (job ->> 'status');
  else
    if status = 'CANCEL' then
      if apply_task_end.task_id is not null and job ->> 'task_id' is null then
        perform rhpool.note_task_id(apply_task_end.job_table, apply_task_end.job_id, apply_task_end.task_id);
      end if;
      finished := rhpool.finish_cancel(apply_task_end.job_table, apply_task_end.job_id);
    elsif status = 'SUCCESS' and coalesce(jsonb_array_length(case when jsonb_typeof(callback -> 'outputs') = 'array' then callback -> 'outputs' end), 0) = 0 then
      -- Seen in production: a SUCCESS with no results. A job never completes
      -- without an output; RunningHub's query (reconciliation) decides.
      outcome := 'unsettled';
      detail := 'SUCCESS without results: left for RunningHub''s query';
      return;
    elsif status = 'FAILED' and coalesce((callback ->> 'retryable')::boolean, false) then
      if apply_task_end.task_id is not null and job ->> 'task_id' is null then
        perform rhpool.note_task_id(apply_task_end.job_table, apply_task_end.job_id, apply_task_end.task_id);
      end if;
      finished := rhpool.retry_failed_task(apply_task_end.job_table, apply_task_end.job_id,
        coalesce(callback ->> 'error_code', 'TASK_FAILED'), coalesce(callback ->> 'error_message', 'the task failed on RunningHub''s machine'));
    else
      finished := rhpool.finish_job(apply_task_end.job_table, apply_task_end.job_id, apply_task_end.task_id, status = 'SUCCESS',
        callback -> 'outputs', callback -> 'usage', callback ->> 'error_code', callback ->> 'error_message');
    end if;
    outcome := 'applied';
    detail := 'job ' || finished;
  end if;
end
$$;

-- Applies one end-of-task callback, already verified (signed job reference)
-- and parsed, in one short transaction: the job is finished (slot freed,
-- terminal event written) when it is the one RunningHub ran, and the delivery
-- is recorded either way. Duplicates, late and out-of-order deliveries change
-- nothing.
--
-- callback: {"status": "SUCCESS" | "FAILED" | "CANCEL", "outputs": [...],
--            "usage": {...}, "error_code": "...", "error_message": "...",
--            "retryable": true when it FAILED on RunningHub's own machine}
create or replace function rhpool.apply_callback(
  job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text
)
returns text
language plpgsql
volatile
as $$
declare
  result record;
begin
  result := rhpool.apply_task_end(apply_callback.job_table, apply_callback.job_id, apply_callback.attempt, apply_callback.task_id, apply_callback.callback);
  if result.outcome = 'unsettled' then
    -- Held, as hold_callback does: the dispatcher asks RunningHub's query.
    result.outcome := 'unconfirmed';
    perform pg_notify('rhpool_confirm', '');
  end if;
  insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback)
  values (apply_callback.job_table, apply_callback.job_id, apply_callback.attempt, apply_callback.task_id, 'TASK_END',
          result.outcome, 200, result.detail, left(apply_callback.body, 65536), apply_callback.callback);
  return result.outcome;
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
