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
-- make; rhpool's guard turns it into the cancellation (020-job-guard.sql).
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
