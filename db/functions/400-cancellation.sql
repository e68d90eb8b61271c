-- Cancellation: the request (a client's or the product's), the jobs the
-- dispatcher must cancel at RunningHub, and the end once RunningHub confirmed.

-- Cancel a job. Not yet started (pending, queued, claimed): cancelled at once,
-- its slot (if any) freed. Already at RunningHub (submitting, outcome unknown,
-- running): the request is recorded and the dispatcher cancels the task with
-- the key of the account that runs it, then finishes the job. Finished: nothing
-- changes. Returns 'cancelled', 'cancel_requested' or 'already_<status>'.
--
-- SECURITY INVOKER: the row is looked up and written as the caller, so a
-- client under RLS can cancel only a job it can see (another user's job is
-- "no job", as if it did not exist). The write is a cancellation request
-- (cancel_requested_at, and the reason when there is none), which a client may
-- make; rhpool's guard turns it into the cancellation (020-job-rows.sql).
create or replace function rhpool.cancel_job(job_table text, job_id uuid, reason text default 'cancelled by request')
returns text
language plpgsql
volatile
as $$
#variable_conflict use_variable
declare
  current_status text;
begin
  perform rhpool.require_job_table(job_table, 'cancel_job');
  execute format('select status from public.%I where id = $1 for update', job_table) into current_status using job_id;
  if current_status is null then
    raise exception 'cancel_job: no job % in %', job_id, job_table using errcode = 'no_data_found';
  end if;
  if current_status in ('completed', 'failed', 'cancelled') then
    return 'already_' || current_status;
  end if;
  execute format('update public.%I set cancel_requested_at = coalesce(cancel_requested_at, now()), error_message = coalesce(error_message, $2)
                  where id = $1 returning status', job_table)
    into current_status using job_id, reason;
  if current_status = 'cancelled' then
    return 'cancelled';
  end if;
  perform pg_notify('rhpool_cancel', job_table || ':' || job_id::text);
  return 'cancel_requested';
end
$$;

-- RunningHub confirmed the cancel (or no longer knows the task): the job ends
-- cancelled, its run ended (slot freed) and its terminal event written.
create or replace function rhpool.finish_cancel(job_table text, job_id uuid)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(finish_cancel.job_table, finish_cancel.job_id);
begin
  if job is null then
    return null;
  end if;
  if rhpool.settle_job(finish_cancel.job_table, finish_cancel.job_id, 'cancelled', 'CANCELLED') then
    return 'cancelled';
  end if;
  return job ->> 'status';
end
$$;

-- Running jobs whose cancellation was requested (rhpool.cancel_job): the
-- dispatcher cancels each at RunningHub with the key of the account that runs
-- it, then finishes it with finish_cancel(). Jobs still being submitted wait
-- until their task id is known.
create or replace function rhpool.pending_cancellations(max_jobs integer default 50)
returns table (job_table text, job_id uuid, api_account text, task_id text, status text)
language sql
stable
as $$
  select r.job_table, r.job_id, r.account, r.task_id, r.status
  from rhpool.runs r
  where r.cancel_requested_at is not null and r.status in ('running', 'outcome_unknown')
  order by r.cancel_requested_at
  limit max_jobs
$$;
