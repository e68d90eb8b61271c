-- What an end user may be shown about a finished job that did not complete:
-- plain words by kind of failure, never RunningHub's raw text (the first
-- version showed users "queue limit reached"). Operators read error_code and
-- error_message.
create or replace function rhpool.user_message(status text, error_code text)
returns text
language sql
immutable
as $$
  select case
    when status = 'cancelled' then 'The job was cancelled.'
    when status <> 'failed' then null
    when error_code in ('301', '380', '412', '433', '435', '803', '809', '810', '901', '1001', '1004', '1007', '1008', '1009', '1101',
                        'INVALID_INPUT', 'INVALID_INPUT_URL', 'INPUT_DOWNLOAD_FAILED', 'INPUT_TOO_LARGE')
      then 'The job could not be started: its inputs were not accepted.'
    when error_code in ('1501', '1505') then 'The job was refused by content moderation.'
    when error_code in ('805', 'TASK_FAILED') then 'The job failed while it was being processed.'
    else 'The job could not be completed. Please try again.'
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
