-- Cancel a job. Not yet started (pending, queued, claimed): cancelled at once,
-- its slot (if any) freed. Already at RunningHub (submitting, outcome unknown,
-- running): the request is recorded and the dispatcher cancels the task with
-- the key of the account that runs it, then finishes the job. Finished: nothing
-- changes. Returns 'cancelled', 'cancel_requested' or 'already_<status>'.
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
  if current_status = any (rhpool.terminal_statuses()) then
    return 'already_' || current_status;
  end if;
  if current_status in ('pending', 'queued', 'claimed') then
    execute format('update public.%I set status = ''cancelled'', error_code = ''CANCELLED'', error_message = $2 where id = $1', job_table)
      using job_id, reason;
    return 'cancelled';
  end if;
  execute format('update public.%I set cancel_requested_at = coalesce(cancel_requested_at, now()), error_message = coalesce(error_message, $2) where id = $1', job_table)
    using job_id, reason;
  perform pg_notify('rhpool_cancel', job_table || ':' || job_id::text);
  return 'cancel_requested';
end
$$;
