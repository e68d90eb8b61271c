-- What an end user may be shown about a finished job that did not complete:
-- plain words by kind of failure, never RunningHub's raw text (the first
-- version showed users "queue limit reached"). Operators read error_code and
-- error_message. The words per code come from src/runninghub/classify.ts
-- (rhpool.error_codes, written at every migrate): SQL does not decide codes.
create or replace function rhpool.user_message(status text, error_code text)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select case
    when status not in ('failed', 'cancelled') then null
    else coalesce(
      (select c.user_message from rhpool.error_codes c
        where c.code = case when status = 'cancelled' then 'CANCELLED' else coalesce(user_message.error_code, '*') end),
      (select c.user_message from rhpool.error_codes c where c.code = '*'))
  end
$$;

-- What the product shows a waiting user: the job's state and, while it waits,
-- its place in the global queue. Null when there is no such job.
-- SECURITY INVOKER: the row is read as the caller, so under RLS a client sees
-- only its own jobs (another user's job is null, like a missing one).
create or replace function rhpool.job_view(job_table text, job_id uuid)
returns jsonb
language plpgsql
stable
as $$
declare
  job jsonb;
begin
  perform rhpool.require_job_table(job_view.job_table, 'job_view');
  execute format('select to_jsonb(j) from public.%I j where j.id = $1', job_view.job_table) into job using job_view.job_id;
  if job is null then
    return null;
  end if;
  return jsonb_build_object(
    'table', job_view.job_table,
    'id', job ->> 'id',
    'status', job ->> 'status',
    'position', rhpool.queue_position(job_view.job_table, job_view.job_id),
    'apiAccount', job ->> 'api_account',
    'taskId', job ->> 'task_id',
    'attempts', (job ->> 'attempts')::integer,
    'createdAt', job -> 'created_at',
    'submittedAt', job -> 'submitted_at',
    'completedAt', job -> 'completed_at',
    'outputUrl', job ->> 'output_url',
    'outputs', job -> 'outputs',
    'errorCode', job ->> 'error_code',
    'errorMessage', job ->> 'error_message',
    'userMessage', rhpool.user_message(job ->> 'status', job ->> 'error_code'),
    'cost', job -> 'rh_usage',
    'cancelRequested', job ->> 'cancel_requested_at' is not null);
end
$$;
