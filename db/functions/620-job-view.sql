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
