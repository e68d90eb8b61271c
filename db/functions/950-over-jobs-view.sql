-- Functions over rhpool.jobs (the view of every job table), so they are
-- plain SQL. This file runs after 900-attach-job-tables.sql builds the view.

-- The other job, in any job table, that already holds this RunningHub task id
-- ('table/id'), or null. A task id names one task: two jobs holding one id
-- could not be told apart by query, cancel or reconciliation, so the second is
-- never given it (each table's unique index would refuse it anyway).
create or replace function rhpool.task_id_holder(task_id text, job_table text, job_id uuid)
returns text
language sql
stable
as $$
  select j.job_table || '/' || j.id
  from rhpool.jobs j
  where j.task_id = task_id_holder.task_id
    and not (j.job_table = task_id_holder.job_table and j.id = task_id_holder.job_id)
  limit 1
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
  select j.job_table, j.id, j.api_account, j.task_id, j.status
  from rhpool.jobs j
  where j.cancel_requested_at is not null and j.status in ('running', 'outcome_unknown')
  order by j.cancel_requested_at
  limit max_jobs
$$;

-- An unknown outcome that no callback resolved within the tool's callback
-- deadline (from submission, never from created_at): RunningHub did not run it
-- as far as anyone can tell. The job fails with a clear code and its terminal
-- event, so the product can refund; it is never resubmitted blindly.
create or replace function rhpool.fail_unresolved_unknowns()
returns integer
language sql
volatile
as $$
  with stale as (
    select j.job_table, j.id, j.api_account, t.callback_deadline
    from rhpool.jobs j join rhpool.tools t on t.job_table = j.job_table
    where j.status = 'outcome_unknown' and j.submitted_at < now() - t.callback_deadline
  ), failed as (
    select rhpool.fail_job(s.job_table, s.id, 'SUBMISSION_OUTCOME_UNKNOWN',
             'RunningHub never answered the submission and no callback came within ' || s.callback_deadline::text) as status,
           rhpool.log_repair('unknown_outcome_failed', s.job_table, s.id, s.api_account, s.callback_deadline::text) as logged
    from stale s
  )
  select count(*)::integer from failed where status = 'failed'
$$;

-- Slot bookkeeping checked against the jobs. A slot whose job is not in
-- flight on that account is freed; an in-flight job without a slot gets one
-- back when its account has room (the cap still applies), or is reported.
-- Drift should never happen: every repair is logged as a bug signal.
create or replace function rhpool.repair_slot_drift()
returns integer
language plpgsql
volatile
as $$
declare
  drift record;
  repaired integer := 0;
begin
  for drift in
    select s.job_table, s.job_id, s.account
    from rhpool.slots s
    where not exists (
      select 1 from rhpool.jobs j
      where j.job_table = s.job_table and j.id = s.job_id and j.api_account = s.account
        and j.status = any (rhpool.in_flight_statuses()))
  loop
    delete from rhpool.slots s where s.job_table = drift.job_table and s.job_id = drift.job_id;
    perform rhpool.log_repair('slot_drift_freed', drift.job_table, drift.job_id, drift.account, 'slot held by a job not in flight');
    repaired := repaired + 1;
  end loop;

  for drift in
    select j.job_table, j.id as job_id, j.api_account as account
    from rhpool.jobs j
    where j.status = any (rhpool.in_flight_statuses())
      and not exists (select 1 from rhpool.slots s where s.job_table = j.job_table and s.job_id = j.id)
  loop
    begin
      insert into rhpool.slots (job_table, job_id, account) values (drift.job_table, drift.job_id, drift.account);
      perform rhpool.log_repair('slot_drift_restored', drift.job_table, drift.job_id, drift.account, 'in-flight job had no slot');
    exception when check_violation then
      perform rhpool.log_repair('slot_drift_over_limit', drift.job_table, drift.job_id, drift.account, sqlerrm);
    end;
    repaired := repaired + 1;
  end loop;
  return repaired;
end
$$;

-- Running jobs whose callback is overdue (the tool's callback deadline from
-- submission), for the dispatcher to ask RunningHub about with the account's
-- key. Each is handed out once per reconcile interval.
create or replace function rhpool.overdue_jobs()
returns table (job_table text, job_id uuid, api_account text, task_id text, past_hard_deadline boolean)
language sql
volatile
as $$
  update rhpool.slots s set checked_at = now()
    from rhpool.jobs j join rhpool.tools t on t.job_table = j.job_table
   where s.job_table = j.job_table and s.job_id = j.id
     and j.status = 'running' and j.task_id is not null
     and j.submitted_at < now() - t.callback_deadline
     and (s.checked_at is null
          or s.checked_at < now() - make_interval(secs => rhpool.setting('reconcile_interval_seconds', '60')::numeric))
  returning s.job_table, s.job_id, j.api_account, j.task_id, j.submitted_at < now() - t.hard_deadline
$$;

-- One maintenance round. Safe to call from pg_cron and from any number of
-- dispatchers at once: a round that finds another running skips.
create or replace function rhpool.run_maintenance()
returns jsonb
language plpgsql
volatile
as $$
begin
  if not pg_try_advisory_xact_lock(7263541, 2) then
    return jsonb_build_object('skipped', 'another maintenance round is running');
  end if;
  return jsonb_build_object(
    'leasesExpired', rhpool.expire_leases(),
    'unknownOutcomesFailed', rhpool.fail_unresolved_unknowns(),
    'keptCallbacksApplied', rhpool.retry_kept_callbacks(),
    'slotDriftRepaired', rhpool.repair_slot_drift(),
    'cooldownsEnded', rhpool.end_cooldowns(),
    'learnedLimitsOutgrown', rhpool.forget_outgrown_limits(),
    'historyPruned', rhpool.prune_history());
end
$$;
