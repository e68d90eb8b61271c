-- A job's end from RunningHub's word: the transitions that finish a job from a
-- task's end (callback or query), the decision whether a TASK_END is this
-- job's and news (apply_task_end), the webhook's way in (apply_callback), and
-- the record of a signed delivery that changed nothing. Deliveries held for
-- confirmation: 310-confirmation.sql; unverified ones: 320-webhook-abuse.sql.

-- Finishes a job from RunningHub's word (callback or query): completed or
-- failed, outputs and usage stored as RunningHub sent them, the run ended
-- (slot freed) and the terminal event written, all in this transaction. A job
-- that is already finished is left alone: duplicates change nothing. Returns
-- 'applied', 'duplicate' or 'not_in_flight'.
--
-- output_url is the item of the tool's own kind (rhpool.pick_output_url; all
-- items stay in outputs); rh_cost, rh_cost_field and rh_cost_unit are
-- RunningHub's own figure and where it came from (rhpool.task_cost). Top-level
-- nulls mean "RunningHub said nothing": the row keeps what it has.
create or replace function rhpool.finish_job(
  job_table text, job_id uuid, task_id text, succeeded boolean,
  outputs jsonb default null, usage jsonb default null,
  error_code text default null, error_message text default null
)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(finish_job.job_table, finish_job.job_id);
  run rhpool.runs;
  cost record;
begin
  if job is null then
    return null;
  end if;
  select r.* into run from rhpool.runs r where r.job_table = finish_job.job_table and r.job_id = finish_job.job_id for update;
  if run.job_id is null then
    return 'duplicate';
  end if;
  if run.status not in ('submitting', 'outcome_unknown', 'running') then
    return 'not_in_flight';
  end if;
  cost := rhpool.task_cost(finish_job.usage);
  perform rhpool.settle_job(finish_job.job_table, finish_job.job_id,
    case when finish_job.succeeded then 'completed' else 'failed' end,
    case when finish_job.succeeded then null else coalesce(finish_job.error_code, 'TASK_FAILED') end,
    case when finish_job.succeeded then null else finish_job.error_message end,
    finish_job.outputs,
    rhpool.pick_output_url(finish_job.outputs, (select t.output_kind from rhpool.tools t where t.job_table = finish_job.job_table)),
    finish_job.usage, cost.amount, cost.field, cost.unit, finish_job.task_id);
  return 'applied';
end
$$;

-- A task that FAILED on RunningHub's own machine (classified by the
-- dispatcher: Stale file handle, OSError/FileNotFoundError in
-- LoadImage/LoadVideo) is over and was not the job's fault: the job goes back
-- to the queue in its place, after a pause, for a new attempt — a new task, so
-- the failed one (already ended, task id forgotten here but logged) cannot be
-- paid twice. Once the attempts run out the job fails with that error.
-- Returns the job's status afterwards.
create or replace function rhpool.retry_failed_task(job_table text, job_id uuid, error_code text, error_message text)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(retry_failed_task.job_table, retry_failed_task.job_id);
  run rhpool.runs;
begin
  select r.* into run from rhpool.runs r where r.job_table = retry_failed_task.job_table and r.job_id = retry_failed_task.job_id for update;
  if run.job_id is null then
    return job ->> 'status';
  end if;
  if run.status not in ('submitting', 'outcome_unknown', 'running') then
    return run.status;
  end if;
  if run.attempts >= run.max_attempts then
    perform rhpool.finish_job(retry_failed_task.job_table, retry_failed_task.job_id, null, false, null, null,
      retry_failed_task.error_code, format('%s (gave up after %s attempts)', retry_failed_task.error_message, run.attempts));
    return 'failed';
  end if;
  perform rhpool.log_repair('machine_failure_retried', retry_failed_task.job_table, retry_failed_task.job_id, run.account,
    format('task %s failed on RunningHub''s machine (%s); attempt %s of %s', coalesce(run.task_id, job ->> 'task_id', '?'),
      left(retry_failed_task.error_message, 300), run.attempts, run.max_attempts));
  perform rhpool.requeue_run(retry_failed_task.job_table, retry_failed_task.job_id, run.attempts,
    now() + make_interval(secs => rhpool.setting('machine_failure_retry_seconds', '10')::numeric),
    retry_failed_task.error_code, retry_failed_task.error_message, true);
  return 'queued';
end
$$;

-- The task a job in flight runs, learnt from its callback before the create
-- answer came (the answer may never come).
create or replace function rhpool.note_task_id(job_table text, job_id uuid, task_id text)
returns void
language plpgsql
volatile
as $$
declare
  -- The job table, looked up once: in the WHERE clause it would be called for each table of the tree.
  relation regclass := rhpool.job_relation(note_task_id.job_table);
begin
  update rhpool.runs r set task_id = note_task_id.task_id
   where r.job_table = note_task_id.job_table and r.job_id = note_task_id.job_id and r.task_id is null;
  perform rhpool.begin_transition();
  update rhpool.job_rows j set task_id = note_task_id.task_id
   where j.tableoid = relation and j.id = note_task_id.job_id and j.task_id is null;
end
$$;

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
