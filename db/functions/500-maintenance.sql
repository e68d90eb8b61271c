-- Self-healing, on a schedule: pg_cron where it is installed, the
-- dispatcher's own timer where it is not (both call rhpool.run_maintenance()).
-- Every repair is written to rhpool.maintenance_log: none is silent.

create or replace function rhpool.log_repair(action text, job_table text, job_id uuid, account text, detail text)
returns void
language sql
volatile
as $$
  insert into rhpool.maintenance_log (action, job_table, job_id, account, detail)
  values (log_repair.action, log_repair.job_table, log_repair.job_id, log_repair.account, log_repair.detail)
$$;

-- Claims whose lease ran out: the dispatcher holding them died or hung.
--  * claimed by a claim round and adopted by no dispatcher: back to the
--    queue, in its place, its attempt given back (nothing was tried);
--  * claimed (nothing sent yet): back to the queue, in its place, counting an
--    attempt (so an input that crashes every dispatcher fails after
--    max_attempts instead of looping); the claim's token is void, so the
--    worker, should it wake up, is refused at its next step;
--  * submitting (the request may have gone out): outcome unknown, never
--    resubmitted; the claim stays the job's (a worker that wakes up with
--    RunningHub's answer may still record it: that is the task it paid for).
-- A job whose product row is held right now (a client's cancel) is left for
-- the next round rather than waited for.
create or replace function rhpool.expire_leases(at timestamptz default now())
returns integer
language plpgsql
volatile
as $$
declare
  expired record;
  repaired integer := 0;
begin
  for expired in
    select r.job_table, r.job_id
    from rhpool.runs r
    where r.lease_expires_at < expire_leases.at
    order by r.lease_expires_at
  loop
    perform 1 from rhpool.job_rows j
     where j.tableoid = rhpool.job_relation(expired.job_table) and j.id = expired.job_id
     for update skip locked;
    continue when not found;
    declare
      run rhpool.runs;
    begin
      select r.* into run from rhpool.runs r
       where r.job_table = expired.job_table and r.job_id = expired.job_id and r.lease_expires_at < expire_leases.at
       for update skip locked;
      continue when run.job_id is null;
      if run.status = 'claimed' and run.holder is null then
        -- A claim round's claim no dispatcher adopted: nothing was tried.
        perform rhpool.requeue_run(run.job_table, run.job_id, run.attempts, run.not_before);
        perform rhpool.log_repair('unadopted_claim_requeued', run.job_table, run.job_id, run.account,
          'claim ' || run.claim_token || ': no dispatcher holding the account''s key took it');
        repaired := repaired + 1;
      elsif run.status = 'claimed' then
        if rhpool.requeue_or_fail(run, 'LEASE_EXPIRED', 'claim expired: the dispatcher holding it stopped before sending', 0) = 'failed' then
          perform rhpool.log_repair('lease_expired_failed', run.job_table, run.job_id, run.account,
            'holder ' || coalesce(run.holder, '?') || ', claim ' || run.claim_token || ', attempts used up');
        else
          perform rhpool.log_repair('lease_expired_requeued', run.job_table, run.job_id, run.account,
            'holder ' || coalesce(run.holder, '?') || ', claim ' || run.claim_token);
        end if;
        repaired := repaired + 1;
      elsif run.status = 'submitting' then
        perform rhpool.to_outcome_unknown(run.job_table, run.job_id, 'the dispatcher stopped while submitting: waiting for the callback, never resubmitted');
        perform rhpool.log_repair('lease_expired_outcome_unknown', run.job_table, run.job_id, run.account,
          'holder ' || coalesce(run.holder, '?') || ', claim ' || run.claim_token);
        repaired := repaired + 1;
      else
        update rhpool.runs r set lease_expires_at = null where r.job_table = run.job_table and r.job_id = run.job_id;
      end if;
    end;
  end loop;
  return repaired;
end
$$;

-- A failure rhpool decides on itself (an unknown outcome past its deadline):
-- the job fails with a clear code, whatever claim it is under.
create or replace function rhpool.fail_job(job_table text, job_id uuid, error_code text, error_message text)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(fail_job.job_table, fail_job.job_id);
begin
  if job is null then
    return null;
  end if;
  if job ->> 'status' = 'pending' then
    return 'pending';
  end if;
  if rhpool.settle_job(fail_job.job_table, fail_job.job_id, 'failed', fail_job.error_code, fail_job.error_message) then
    return 'failed';
  end if;
  return job ->> 'status';
end
$$;

-- An unknown outcome that no callback resolved within the tool's callback
-- deadline (from submission, never from created_at): RunningHub did not run it
-- as far as anyone can tell. The job fails with a clear code and its terminal
-- event, so the product can refund; it is never resubmitted blindly.
create or replace function rhpool.fail_unresolved_unknowns(at timestamptz default now())
returns integer
language sql
volatile
as $$
  with stale as (
    select r.job_table, r.job_id, r.account, t.callback_deadline
    from rhpool.runs r join rhpool.tools t on t.job_table = r.job_table
    where r.status = 'outcome_unknown' and r.submitted_at < fail_unresolved_unknowns.at - t.callback_deadline
  ), failed as (
    select rhpool.fail_job(s.job_table, s.job_id, 'SUBMISSION_OUTCOME_UNKNOWN',
             'RunningHub never answered the submission and no callback came within ' || s.callback_deadline::text) as status,
           rhpool.log_repair('unknown_outcome_failed', s.job_table, s.job_id, s.account, s.callback_deadline::text) as logged
    from stale s
  )
  select count(*)::integer from failed where status = 'failed'
$$;

-- Running jobs whose callback is overdue (the tool's callback deadline from
-- submission), for the dispatcher to ask RunningHub about with the account's
-- key. Each is handed out once per reconcile interval.
create or replace function rhpool.overdue_jobs(at timestamptz default now())
returns table (job_table text, job_id uuid, api_account text, task_id text, past_hard_deadline boolean)
language sql
volatile
as $$
  update rhpool.runs r set checked_at = overdue_jobs.at
    from rhpool.tools t
   where t.job_table = r.job_table
     and r.status = 'running' and r.task_id is not null
     and r.submitted_at < overdue_jobs.at - t.callback_deadline
     and (r.checked_at is null
          or r.checked_at < overdue_jobs.at - make_interval(secs => rhpool.setting('reconcile_interval_seconds', '60')::numeric))
  returning r.job_table, r.job_id, r.account, r.task_id, r.submitted_at < overdue_jobs.at - t.hard_deadline
$$;

-- The consistency of rhpool.runs with the product's rows is not repaired
-- here: each transition writes both in one transaction (there is no copy
-- kept in step afterwards to drift). The function of the design before it
-- is dropped with the other retired ones (005-retired.sql).

-- One maintenance round. Safe to call from pg_cron and from any number of
-- dispatchers at once: a round that finds another running skips.
create or replace function rhpool.run_maintenance(at timestamptz default now())
returns jsonb
language plpgsql
volatile
as $$
begin
  if not pg_try_advisory_xact_lock(7263541, 2) then
    return jsonb_build_object('skipped', 'another maintenance round is running');
  end if;
  -- Not a repair, so not reported: the queue's and the spend's journals folded
  -- in, for a database where no dispatcher runs to fold them every second.
  perform rhpool.fold_journals();
  return jsonb_build_object(
    'leasesExpired', rhpool.expire_leases(run_maintenance.at),
    'unknownOutcomesFailed', rhpool.fail_unresolved_unknowns(run_maintenance.at),
    'keptCallbacksApplied', rhpool.retry_kept_callbacks(run_maintenance.at),
    'cooldownsEnded', rhpool.end_cooldowns(run_maintenance.at),
    'learnedLimitsOutgrown', rhpool.forget_outgrown_limits(run_maintenance.at),
    'historyPruned', rhpool.prune_history(run_maintenance.at));
end
$$;

-- Callbacks kept because no job could take them yet are tried again; past the
-- window they are marked expired (and stay visible in the status).
create or replace function rhpool.retry_kept_callbacks(at timestamptz default now())
returns integer
language plpgsql
volatile
as $$
declare
  kept record;
  result record;
  window_seconds numeric := rhpool.setting('kept_callback_window_seconds', '3600')::numeric;
  applied integer := 0;
begin
  for kept in
    select d.id, d.job_table, d.job_id, d.attempt, d.task_id, d.callback, d.received_at
    from rhpool.webhook_deliveries d
    where d.outcome = 'kept' and d.resolved_at is null and d.callback is not null
    order by d.received_at
    limit 500
    for update skip locked
  loop
    result := rhpool.apply_task_end(kept.job_table, kept.job_id, kept.attempt, kept.task_id, kept.callback);
    if result.outcome <> 'kept' then
      update rhpool.webhook_deliveries d set resolved_at = now(), resolution = result.outcome || ': ' || result.detail where d.id = kept.id;
      perform rhpool.log_repair('kept_callback_' || result.outcome, kept.job_table, kept.job_id, null, result.detail);
      applied := applied + 1;
    elsif kept.received_at < retry_kept_callbacks.at - make_interval(secs => window_seconds) then
      update rhpool.webhook_deliveries d set resolved_at = now(), resolution = 'expired: ' || result.detail where d.id = kept.id;
      perform rhpool.log_repair('kept_callback_expired', kept.job_table, kept.job_id, null, result.detail);
    end if;
  end loop;
  return applied;
end
$$;

-- Retention: recorded callbacks and processed terminal events older than
-- retention_days. The job rows are the product's and are never touched.
create or replace function rhpool.prune_history(at timestamptz default now())
returns integer
language plpgsql
volatile
as $$
declare
  cutoff timestamptz := prune_history.at - make_interval(days => rhpool.setting('retention_days', '30')::integer);
  deliveries integer;
  events integer;
  logs integer;
begin
  delete from rhpool.webhook_deliveries d where d.received_at < cutoff and (d.outcome <> 'kept' or d.resolved_at is not null);
  get diagnostics deliveries = row_count;
  delete from rhpool.job_events e where e.processed_at < cutoff;
  get diagnostics events = row_count;
  delete from rhpool.maintenance_log l where l.at < cutoff;
  get diagnostics logs = row_count;
  return deliveries + events + logs;
end
$$;

-- Ended cooldowns are cleared and the dispatchers woken: the account can take work.
create or replace function rhpool.end_cooldowns(at timestamptz default now())
returns integer
language plpgsql
volatile
as $$
declare
  ended integer;
begin
  update rhpool.accounts a set cooldown_until = null, cooldown_reason = null, updated_at = now()
   where a.cooldown_until is not null and a.cooldown_until <= end_cooldowns.at;
  get diagnostics ended = row_count;
  if ended > 0 then
    perform pg_notify('rhpool_wakeup', 'cooldown ended');
  end if;
  return ended;
end
$$;

-- RunningHub's answer to a query about an overdue job, applied as if its
-- callback had come (to the job's current attempt), and logged.
create or replace function rhpool.apply_reconciliation(job_table text, job_id uuid, task_id text, callback jsonb)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.lock_job(apply_reconciliation.job_table, apply_reconciliation.job_id);
  result record;
begin
  if job is null then
    return null;
  end if;
  result := rhpool.apply_task_end(apply_reconciliation.job_table, apply_reconciliation.job_id, (job ->> 'attempts')::integer,
    apply_reconciliation.task_id, apply_reconciliation.callback);
  perform rhpool.log_repair('reconciled_' || result.outcome, apply_reconciliation.job_table, apply_reconciliation.job_id, job ->> 'api_account',
    (apply_reconciliation.callback ->> 'status') || ': ' || result.detail);
  return result.outcome;
end
$$;
