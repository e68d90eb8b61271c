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
