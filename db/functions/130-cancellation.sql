-- RunningHub confirmed the cancel (or no longer knows the task): the job ends
-- cancelled, its slot freed and its terminal event written.
create or replace function rhpool.finish_cancel(job_table text, job_id uuid)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(finish_cancel.job_table, finish_cancel.job_id);
begin
  if job is null or job ->> 'status' = any (rhpool.terminal_statuses()) then
    return job ->> 'status';
  end if;
  perform rhpool.set_job_fields(finish_cancel.job_table, finish_cancel.job_id, jsonb_build_object(
    'status', 'cancelled', 'error_code', 'CANCELLED'));
  return 'cancelled';
end
$$;

-- A dispatcher still working on a claim (uploading a large input) keeps it.
-- lease_seconds null: the lease_seconds setting, the one every claim uses.
create or replace function rhpool.renew_lease(job_table text, job_id uuid, claimed_by text, lease_seconds integer default null)
returns boolean
language sql
volatile
as $$
  update rhpool.slots s
     set lease_expires_at = now() + make_interval(secs => coalesce(renew_lease.lease_seconds, rhpool.required_setting('lease_seconds')::integer))
   where s.job_table = renew_lease.job_table and s.job_id = renew_lease.job_id
     and s.holder is not distinct from renew_lease.claimed_by and s.lease_expires_at is not null
  returning true
$$;
