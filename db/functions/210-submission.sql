-- The dispatcher's side of a job's life, one function per step. Every step
-- names the claim it acts under (the token claim_account_slot() returned):
-- a claim can be recovered after its lease and the job claimed again by
-- another worker, on another account. A step under a claim that is no longer
-- the job's is refused (it returns null or false and changes nothing) and
-- logged as stale_claim_refused. A job that finished meanwhile (a callback can
-- beat the create answer, a cancel) is no longer the claim's either: the
-- step returns null, and the worker stops working on the job.

-- The run a step under this claim may act on, locked (product row first, then
-- the run: 020-job-rows.sql), or null. A different token is logged.
create or replace function rhpool.lock_claim(job_table text, job_id uuid, claim_token bigint, step text)
returns rhpool.runs
language plpgsql
volatile
as $$
declare
  -- The job table, looked up once: in the WHERE clause it would be called for each table of the tree.
  relation regclass := rhpool.job_relation(lock_claim.job_table);
  run rhpool.runs;
begin
  perform 1 from rhpool.job_rows j
   where j.tableoid = relation and j.id = lock_claim.job_id
   for update;
  select r.* into run from rhpool.runs r
   where r.job_table = lock_claim.job_table and r.job_id = lock_claim.job_id
   for update;
  if run.job_id is null then
    return null;
  end if;
  if run.claim_token is distinct from lock_claim.claim_token then
    perform rhpool.log_repair('stale_claim_refused', lock_claim.job_table, lock_claim.job_id, run.account,
      format('%s under claim %s refused: the job is %s under %s', lock_claim.step, coalesce(lock_claim.claim_token::text, 'none'),
             run.status, coalesce('claim ' || run.claim_token::text, 'no claim')));
    return null;
  end if;
  return run;
end
$$;

-- The job a dispatcher holds a claim on, with its tool's definition, read
-- before the submission starts (inputs are uploaded while the job is still
-- only claimed: a crash then just returns it to the queue). Null when the
-- claim is no longer the job's.
create or replace function rhpool.claimed_job(job_table text, job_id uuid, claim_token bigint)
returns jsonb
language plpgsql
stable
as $$
declare
  job jsonb;
begin
  if not exists (
    select 1 from rhpool.runs r
    where r.job_table = claimed_job.job_table and r.job_id = claimed_job.job_id
      and r.claim_token = claimed_job.claim_token and r.status = 'claimed'
  ) then
    return null;
  end if;
  execute format('select to_jsonb(j) from public.%I j where j.id = $1', claimed_job.job_table) into job using claimed_job.job_id;
  return jsonb_build_object('job', job) || (
    select jsonb_build_object('tool', rhpool.tool_definition(t))
    from rhpool.tools t where t.job_table = claimed_job.job_table);
end
$$;

-- A dispatcher still working on a claim (uploading a large input) keeps it.
-- False when the claim is gone (recovered after its lease, perhaps claimed
-- again by another worker): the worker must stop working on the job.
create or replace function rhpool.renew_lease(job_table text, job_id uuid, claim_token bigint, lease_seconds integer default null, at timestamptz default now())
returns boolean
language plpgsql
volatile
as $$
declare
  run rhpool.runs;
begin
  update rhpool.runs r
     set lease_expires_at = renew_lease.at + make_interval(secs => coalesce(renew_lease.lease_seconds, rhpool.required_setting('lease_seconds')::integer))
   where r.job_table = renew_lease.job_table and r.job_id = renew_lease.job_id
     and r.claim_token = renew_lease.claim_token and r.status in ('claimed', 'submitting')
  returning r.* into run;
  if run.job_id is not null then
    return true;
  end if;
  select r.* into run from rhpool.runs r where r.job_table = renew_lease.job_table and r.job_id = renew_lease.job_id;
  if run.job_id is not null and run.claim_token is distinct from renew_lease.claim_token then
    perform rhpool.log_repair('stale_claim_refused', renew_lease.job_table, renew_lease.job_id, run.account,
      format('renew_lease under claim %s refused: the job is %s under %s', coalesce(renew_lease.claim_token::text, 'none'),
             run.status, coalesce('claim ' || run.claim_token::text, 'no claim')));
  end if;
  return false;
end
$$;

-- claimed → submitting, just before the HTTP call. Extends the lease to cover
-- the call. Returns the job (attempts now counts this one) or null when the
-- claim is no longer the job's: then send nothing.
create or replace function rhpool.begin_submission(job_table text, job_id uuid, claim_token bigint, timeout_seconds integer default 60)
returns jsonb
language plpgsql
volatile
as $$
declare
  -- The job table, looked up once: in the WHERE clause it would be called for each table of the tree.
  relation regclass := rhpool.job_relation(begin_submission.job_table);
  run rhpool.runs := rhpool.lock_claim(begin_submission.job_table, begin_submission.job_id, begin_submission.claim_token, 'begin_submission');
begin
  if run.job_id is null or run.status <> 'claimed' then
    return null;
  end if;
  update rhpool.runs r set status = 'submitting', attempts = r.attempts + 1, submitted_at = now(),
         lease_expires_at = now() + make_interval(secs => begin_submission.timeout_seconds + 5)
   where r.job_table = begin_submission.job_table and r.job_id = begin_submission.job_id;
  perform rhpool.begin_transition();
  update rhpool.job_rows j set status = 'submitting', attempts = run.attempts + 1, submitted_at = now(), updated_at = now()
   where j.tableoid = relation and j.id = begin_submission.job_id;
  return jsonb_build_object('attempts', run.attempts + 1, 'status', 'submitting');
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
create or replace function rhpool.record_submission(job_table text, job_id uuid, claim_token bigint, task_id text)
returns text
language plpgsql
volatile
as $$
declare
  -- The job table, looked up once: in the WHERE clause it would be called for each table of the tree.
  relation regclass := rhpool.job_relation(record_submission.job_table);
  run rhpool.runs;
  holder text;
  finished jsonb;
begin
  if task_id is null or task_id !~ '^[0-9A-Za-z_-]{1,64}$' then
    raise exception 'record_submission: task_id must be 1-64 letters, digits, - or _, got %', coalesce(quote_literal(task_id), 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;
  run := rhpool.lock_claim(record_submission.job_table, record_submission.job_id, record_submission.claim_token, 'record_submission');
  if run.job_id is null then
    -- Finished meanwhile (its callback came first) or claimed again: keep the
    -- task id on a finished job that has none.
    finished := rhpool.lock_job(record_submission.job_table, record_submission.job_id);
    if finished ->> 'status' = any (rhpool.terminal_statuses()) and finished ->> 'task_id' is null
       and rhpool.task_id_holder(record_submission.task_id, record_submission.job_table, record_submission.job_id) is null then
      perform rhpool.begin_transition();
      update rhpool.job_rows j set task_id = record_submission.task_id
       where j.tableoid = relation and j.id = record_submission.job_id;
    end if;
    return finished ->> 'status';
  end if;
  if run.task_id is distinct from record_submission.task_id then
    holder := rhpool.task_id_holder(record_submission.task_id, record_submission.job_table, record_submission.job_id);
  end if;
  if holder is not null then
    perform rhpool.log_repair('task_id_conflict', record_submission.job_table, record_submission.job_id, run.account,
      format('RunningHub answered task id %s, which %s already holds', record_submission.task_id, holder));
    if run.status in ('submitting', 'outcome_unknown') then
      perform rhpool.settle_job(record_submission.job_table, record_submission.job_id, 'failed', 'TASK_ID_CONFLICT',
        format('RunningHub answered task id %s, which %s already holds; not resubmitted', record_submission.task_id, holder));
      return 'failed';
    end if;
    return run.status;
  end if;
  if run.status in ('submitting', 'outcome_unknown') then
    update rhpool.runs r set status = 'running', task_id = record_submission.task_id, lease_expires_at = null
     where r.job_table = record_submission.job_table and r.job_id = record_submission.job_id;
    perform rhpool.begin_transition();
    update rhpool.job_rows j set status = 'running', task_id = record_submission.task_id, started_at = coalesce(j.started_at, now()), updated_at = now()
     where j.tableoid = relation and j.id = record_submission.job_id;
    -- The account took a task: its cooldown streak ends (no write when there is none).
    perform rhpool.account_accepted_task(run.account);
    return 'running';
  end if;
  return run.status;
end
$$;

-- The account was full (or broken), or the dispatcher is stopping: the job
-- goes back to the queue in its place; it was not the job's fault, so the
-- attempt is given back.
create or replace function rhpool.release_to_queue(job_table text, job_id uuid, claim_token bigint, reason text default null)
returns boolean
language plpgsql
volatile
as $$
declare
  run rhpool.runs := rhpool.lock_claim(release_to_queue.job_table, release_to_queue.job_id, release_to_queue.claim_token, 'release_to_queue');
begin
  if run.job_id is null or run.status not in ('claimed', 'submitting') then
    return false;
  end if;
  perform rhpool.requeue_run(release_to_queue.job_table, release_to_queue.job_id,
    greatest(run.attempts - case when run.status = 'submitting' then 1 else 0 end, 0), run.not_before,
    null, release_to_queue.reason);
  return true;
end
$$;

-- A transient failure (5xx, network, HTML page, timeout before sending):
-- back to the queue in its place, not before a backoff; failed once the
-- attempts run out. A failure before the request went out (an input that
-- would not download) counts as an attempt too, so a dead input cannot retry
-- forever.
create or replace function rhpool.requeue_or_fail(run rhpool.runs, error_code text, error_message text, delay_seconds numeric)
returns text
language plpgsql
volatile
as $$
declare
  attempts_used integer := run.attempts + case when run.status = 'claimed' then 1 else 0 end;
begin
  if attempts_used >= run.max_attempts then
    update rhpool.runs r set attempts = attempts_used where r.job_table = run.job_table and r.job_id = run.job_id;
    perform rhpool.settle_job(run.job_table, run.job_id, 'failed', requeue_or_fail.error_code,
      format('%s (gave up after %s attempts)', requeue_or_fail.error_message, attempts_used));
    return 'failed';
  end if;
  perform rhpool.requeue_run(run.job_table, run.job_id, attempts_used,
    now() + make_interval(secs => greatest(requeue_or_fail.delay_seconds, 0)), requeue_or_fail.error_code, requeue_or_fail.error_message);
  return 'queued';
end
$$;

create or replace function rhpool.retry_later(job_table text, job_id uuid, claim_token bigint, error_code text, error_message text, delay_seconds numeric)
returns text
language plpgsql
volatile
as $$
declare
  run rhpool.runs := rhpool.lock_claim(retry_later.job_table, retry_later.job_id, retry_later.claim_token, 'retry_later');
begin
  if run.job_id is null then
    -- Not this claim's job any more (recovered, or finished meanwhile).
    return null;
  end if;
  if run.status not in ('claimed', 'submitting') then
    return run.status;
  end if;
  return rhpool.requeue_or_fail(run, retry_later.error_code, retry_later.error_message, retry_later.delay_seconds);
end
$$;

-- The request was bad, or the task failed: the job fails with a clear code.
create or replace function rhpool.fail_claim(job_table text, job_id uuid, claim_token bigint, error_code text, error_message text)
returns text
language plpgsql
volatile
as $$
declare
  run rhpool.runs := rhpool.lock_claim(fail_claim.job_table, fail_claim.job_id, fail_claim.claim_token, 'fail_claim');
begin
  if run.job_id is null then
    -- Not this claim's job any more (recovered, or finished meanwhile).
    return null;
  end if;
  perform rhpool.settle_job(fail_claim.job_table, fail_claim.job_id, 'failed', fail_claim.error_code, fail_claim.error_message);
  return 'failed';
end
$$;

-- The request may have reached RunningHub but no answer came back: never
-- resubmit (that could pay twice). The job keeps its slot and waits for its
-- callback (the webhook URL carries the job reference) or its deadline.
-- Shared by the dispatcher (under its claim) and lease expiry.
create or replace function rhpool.to_outcome_unknown(job_table text, job_id uuid, error_message text)
returns void
language plpgsql
volatile
as $$
declare
  -- The job table, looked up once: in the WHERE clause it would be called for each table of the tree.
  relation regclass := rhpool.job_relation(to_outcome_unknown.job_table);
begin
  update rhpool.runs r set status = 'outcome_unknown', lease_expires_at = null
   where r.job_table = to_outcome_unknown.job_table and r.job_id = to_outcome_unknown.job_id;
  perform rhpool.begin_transition();
  update rhpool.job_rows j set status = 'outcome_unknown', error_message = to_outcome_unknown.error_message, updated_at = now()
   where j.tableoid = relation and j.id = to_outcome_unknown.job_id;
end
$$;

create or replace function rhpool.mark_outcome_unknown(job_table text, job_id uuid, claim_token bigint, error_message text)
returns text
language plpgsql
volatile
as $$
declare
  run rhpool.runs := rhpool.lock_claim(mark_outcome_unknown.job_table, mark_outcome_unknown.job_id, mark_outcome_unknown.claim_token, 'mark_outcome_unknown');
begin
  if run.job_id is null then
    -- Not this claim's job any more (recovered, or finished meanwhile).
    return null;
  end if;
  if run.status <> 'submitting' then
    return run.status;
  end if;
  perform rhpool.to_outcome_unknown(mark_outcome_unknown.job_table, mark_outcome_unknown.job_id, mark_outcome_unknown.error_message);
  return 'outcome_unknown';
end
$$;

