-- The dispatcher's side of a job's life, one function per step. Each checks
-- that the job is still where the caller thinks it is (a claim can be
-- recovered after its lease, a job cancelled, a callback can finish a job
-- first), so a late or duplicate step changes nothing.

-- A row of any job table, locked, as jsonb (null when missing).
create or replace function rhpool.lock_job(job_table text, job_id uuid)
returns jsonb
language plpgsql
volatile
as $$
-- It takes a row lock (FOR UPDATE, in dynamic SQL the checker cannot see), so
-- it is VOLATILE on purpose.
-- @plpgsql_check_options: performance_warnings = false
declare
  job jsonb;
begin
  perform rhpool.require_job_table(lock_job.job_table, 'rhpool');
  execute format('select to_jsonb(j) from public.%I j where j.id = $1 for update', lock_job.job_table)
    into job using lock_job.job_id;
  return job;
end
$$;

create or replace function rhpool.set_job_fields(job_table text, job_id uuid, fields jsonb)
returns void
language plpgsql
volatile
as $$
declare
  assignments text;
begin
  select string_agg(format('%I = (($2 ->> %L))::%s', f.key, f.key, c.data_type_name), ', ')
    into assignments
  from jsonb_each(fields) f
  join lateral (
    select format_type(a.atttypid, a.atttypmod) as data_type_name
    from pg_attribute a
    where a.attrelid = format('public.%I', set_job_fields.job_table)::regclass and a.attname = f.key and not a.attisdropped
  ) c on true;
  if assignments is null then
    return;
  end if;
  execute format('update public.%I set %s where id = $1', set_job_fields.job_table, assignments)
    using set_job_fields.job_id, fields;
end
$$;

-- claimed → submitting, just before the HTTP call. Extends the lease to cover
-- the call. Returns the job (attempts now counts this one) or null when the
-- claim is no longer this holder's (recovered, cancelled): then send nothing.
create or replace function rhpool.begin_submission(job_table text, job_id uuid, claimed_by text, timeout_seconds integer default 60)
returns jsonb
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(begin_submission.job_table, begin_submission.job_id);
begin
  if job is null or job ->> 'status' <> 'claimed' then
    return null;
  end if;
  if not exists (
    select 1 from rhpool.slots s
    where s.job_table = begin_submission.job_table and s.job_id = begin_submission.job_id
      and s.holder is not distinct from begin_submission.claimed_by
  ) then
    return null;
  end if;
  update rhpool.slots s set lease_expires_at = now() + make_interval(secs => timeout_seconds + 5)
   where s.job_table = begin_submission.job_table and s.job_id = begin_submission.job_id;
  perform rhpool.set_job_fields(begin_submission.job_table, begin_submission.job_id, '{"status": "submitting"}');
  return rhpool.lock_job(begin_submission.job_table, begin_submission.job_id);
end
$$;

-- RunningHub accepted the task: submitting/outcome_unknown → running. If the
-- callback already finished the job (it can beat the create answer), only the
-- task id is kept. Returns the job's status afterwards.
--
-- A task id another job already holds (a RunningHub that restarted its ids, a
-- simulator run against an old database, a forged answer) cannot identify this
-- job's task: query, cancel and reconciliation would act on the other job's.
-- The job fails with TASK_ID_CONFLICT, naming both, and is never resubmitted
-- (a task may be running and paid for); the conflict goes to maintenance_log.
create or replace function rhpool.record_submission(job_table text, job_id uuid, task_id text)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(record_submission.job_table, record_submission.job_id);
  holder text;
begin
  if task_id is null or task_id !~ '^[0-9A-Za-z_-]{1,64}$' then
    raise exception 'record_submission: task_id must be 1-64 letters, digits, - or _, got %', coalesce(quote_literal(task_id), 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;
  if job is null then
    return null;
  end if;
  if job ->> 'task_id' is distinct from record_submission.task_id then
    holder := rhpool.task_id_holder(record_submission.task_id, record_submission.job_table, record_submission.job_id);
  end if;
  if holder is not null then
    perform rhpool.log_repair('task_id_conflict', record_submission.job_table, record_submission.job_id, job ->> 'api_account',
      format('RunningHub answered task id %s, which %s already holds', record_submission.task_id, holder));
    if job ->> 'status' in ('submitting', 'outcome_unknown') then
      perform rhpool.set_job_fields(record_submission.job_table, record_submission.job_id, jsonb_build_object(
        'status', 'failed', 'error_code', 'TASK_ID_CONFLICT',
        'error_message', format('RunningHub answered task id %s, which %s already holds; not resubmitted', record_submission.task_id, holder)));
      return 'failed';
    end if;
    return job ->> 'status';
  end if;
  if job ->> 'status' in ('submitting', 'outcome_unknown') then
    update rhpool.slots s set lease_expires_at = null
     where s.job_table = record_submission.job_table and s.job_id = record_submission.job_id;
    perform rhpool.set_job_fields(record_submission.job_table, record_submission.job_id,
      jsonb_build_object('status', 'running', 'task_id', record_submission.task_id));
    return 'running';
  end if;
  if job ->> 'task_id' is null then
    perform rhpool.set_job_fields(record_submission.job_table, record_submission.job_id,
      jsonb_build_object('task_id', record_submission.task_id));
  end if;
  return job ->> 'status';
end
$$;

-- The account was full (or broken): the job goes back to the queue in its
-- place (same priority and created_at); it was not the job's fault, so the
-- attempt is given back.
create or replace function rhpool.release_to_queue(job_table text, job_id uuid, reason text default null)
returns boolean
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(release_to_queue.job_table, release_to_queue.job_id);
begin
  if job is null or job ->> 'status' not in ('claimed', 'submitting') then
    return false;
  end if;
  perform rhpool.set_job_fields(release_to_queue.job_table, release_to_queue.job_id, jsonb_build_object(
    'status', 'queued',
    'attempts', greatest((job ->> 'attempts')::integer - case when job ->> 'status' = 'submitting' then 1 else 0 end, 0),
    'error_message', reason));
  return true;
end
$$;

-- A transient failure (5xx, network, HTML page, timeout before sending):
-- back to the queue in its place, not before a backoff; failed once the
-- attempts run out.
create or replace function rhpool.retry_later(job_table text, job_id uuid, error_code text, error_message text, delay_seconds numeric)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(retry_later.job_table, retry_later.job_id);
  attempts_used integer;
begin
  if job is null or job ->> 'status' not in ('claimed', 'submitting') then
    return job ->> 'status';
  end if;
  -- A failure before the request went out (an input that would not download)
  -- counts as an attempt too, so a dead input cannot retry forever.
  attempts_used := (job ->> 'attempts')::integer + case when job ->> 'status' = 'claimed' then 1 else 0 end;
  if attempts_used >= (job ->> 'max_attempts')::integer then
    perform rhpool.set_job_fields(retry_later.job_table, retry_later.job_id, jsonb_build_object(
      'status', 'failed', 'error_code', retry_later.error_code, 'attempts', attempts_used,
      'error_message', format('%s (gave up after %s attempts)', retry_later.error_message, attempts_used)));
    return 'failed';
  end if;
  perform rhpool.set_job_fields(retry_later.job_table, retry_later.job_id, jsonb_build_object(
    'status', 'queued', 'error_code', retry_later.error_code, 'error_message', retry_later.error_message,
    'attempts', attempts_used,
    'not_before', now() + make_interval(secs => greatest(retry_later.delay_seconds, 0))));
  return 'queued';
end
$$;

-- The request was bad, or the task failed: the job fails with a clear code.
create or replace function rhpool.fail_job(job_table text, job_id uuid, error_code text, error_message text)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(fail_job.job_table, fail_job.job_id);
begin
  if job is null or job ->> 'status' = any (rhpool.terminal_statuses()) or job ->> 'status' = 'pending' then
    return job ->> 'status';
  end if;
  perform rhpool.set_job_fields(fail_job.job_table, fail_job.job_id, jsonb_build_object(
    'status', 'failed', 'error_code', fail_job.error_code, 'error_message', fail_job.error_message));
  return 'failed';
end
$$;

-- The request may have reached RunningHub but no answer came back: never
-- resubmit (that could pay twice). The job keeps its slot and waits for its
-- callback (the webhook URL carries the job reference) or its deadline.
create or replace function rhpool.mark_outcome_unknown(job_table text, job_id uuid, error_message text)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(mark_outcome_unknown.job_table, mark_outcome_unknown.job_id);
begin
  if job is null or job ->> 'status' <> 'submitting' then
    return job ->> 'status';
  end if;
  update rhpool.slots s set lease_expires_at = null
   where s.job_table = mark_outcome_unknown.job_table and s.job_id = mark_outcome_unknown.job_id;
  perform rhpool.set_job_fields(mark_outcome_unknown.job_table, mark_outcome_unknown.job_id, jsonb_build_object(
    'status', 'outcome_unknown', 'error_message', mark_outcome_unknown.error_message));
  return 'outcome_unknown';
end
$$;

-- Finishes a job from RunningHub's word (callback or query): completed or
-- failed, outputs and usage stored as RunningHub sent them, slot freed and the
-- terminal event written by the triggers, all in this transaction. A job that
-- is already finished is left alone: duplicates change nothing. Returns
-- 'applied', 'duplicate' or 'not_in_flight'.
--
-- output_url is the item of the tool's own kind (rhpool.pick_output_url; all
-- items stay in outputs); rh_cost, rh_cost_field and rh_cost_unit are
-- RunningHub's own figure and where it came from (rhpool.task_cost). A job
-- that completes keeps no error from earlier tries (an account that was full,
-- a transient failure): error_code and error_message are cleared.
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
  cost record;
  fields jsonb;
begin
  if job is null then
    return null;
  end if;
  if job ->> 'status' = any (rhpool.terminal_statuses()) then
    return 'duplicate';
  end if;
  if job ->> 'status' not in ('submitting', 'outcome_unknown', 'running') then
    return 'not_in_flight';
  end if;
  cost := rhpool.task_cost(finish_job.usage);
  fields := jsonb_build_object(
    'status', case when finish_job.succeeded then 'completed' else 'failed' end,
    'task_id', coalesce(job ->> 'task_id', finish_job.task_id),
    'outputs', finish_job.outputs,
    'output_url', rhpool.pick_output_url(finish_job.outputs,
      (select t.output_kind from rhpool.tools t where t.job_table = finish_job.job_table)),
    'rh_usage', finish_job.usage,
    'rh_cost', cost.amount,
    'rh_cost_field', cost.field,
    'rh_cost_unit', cost.unit,
    'error_code', case when finish_job.succeeded then null else coalesce(finish_job.error_code, 'TASK_FAILED') end,
    'error_message', case when finish_job.succeeded then null else finish_job.error_message end);
  -- Top-level nulls mean "RunningHub said nothing": keep what the row has;
  -- except a success's errors, which must not outlive it.
  select jsonb_object_agg(f.key, f.value) into fields from jsonb_each(fields) f
   where f.value <> 'null'::jsonb or (finish_job.succeeded and f.key in ('error_code', 'error_message'));
  perform rhpool.set_job_fields(finish_job.job_table, finish_job.job_id, fields);
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
  attempts_used integer;
begin
  if job is null or job ->> 'status' not in ('submitting', 'outcome_unknown', 'running') then
    return job ->> 'status';
  end if;
  attempts_used := (job ->> 'attempts')::integer;
  if attempts_used >= (job ->> 'max_attempts')::integer then
    perform rhpool.finish_job(retry_failed_task.job_table, retry_failed_task.job_id, null, false, null, null,
      retry_failed_task.error_code, format('%s (gave up after %s attempts)', retry_failed_task.error_message, attempts_used));
    return 'failed';
  end if;
  perform rhpool.log_repair('machine_failure_retried', retry_failed_task.job_table, retry_failed_task.job_id, job ->> 'api_account',
    format('task %s failed on RunningHub''s machine (%s); attempt %s of %s', coalesce(job ->> 'task_id', '?'),
      left(retry_failed_task.error_message, 300), attempts_used, job ->> 'max_attempts'));
  perform rhpool.set_job_fields(retry_failed_task.job_table, retry_failed_task.job_id, jsonb_build_object(
    'status', 'queued', 'task_id', null, 'error_code', retry_failed_task.error_code,
    'error_message', retry_failed_task.error_message,
    'not_before', now() + make_interval(secs => rhpool.setting('machine_failure_retry_seconds', '10')::numeric)));
  return 'queued';
end
$$;

-- The job a dispatcher holds a claim on, with its tool's definition, read
-- before the submission starts (inputs are uploaded while the job is still
-- only claimed: a crash then just returns it to the queue). Null when the
-- claim is no longer this holder's.
create or replace function rhpool.claimed_job(job_table text, job_id uuid, claimed_by text)
returns jsonb
language plpgsql
stable
as $$
declare
  job jsonb;
begin
  if not exists (
    select 1 from rhpool.slots s
    where s.job_table = claimed_job.job_table and s.job_id = claimed_job.job_id
      and s.holder is not distinct from claimed_job.claimed_by and s.lease_expires_at is not null
  ) then
    return null;
  end if;
  execute format('select to_jsonb(j) from public.%I j where j.id = $1 and j.status = ''claimed''', claimed_job.job_table)
    into job using claimed_job.job_id;
  if job is null then
    return null;
  end if;
  return jsonb_build_object('job', job) || (
    select jsonb_build_object('tool', jsonb_build_object('tool', t.tool, 'app', t.app, 'node_map', t.node_map, 'instance_type', t.instance_type))
    from rhpool.tools t where t.job_table = claimed_job.job_table);
end
$$;
