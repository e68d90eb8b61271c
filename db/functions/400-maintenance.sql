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
--  * claimed (nothing sent yet): back to the queue, in its place;
--  * submitting (the request may have gone out): outcome unknown, never resubmitted.
create or replace function rhpool.expire_leases()
returns integer
language plpgsql
volatile
as $$
declare
  expired record;
  job jsonb;
  repaired integer := 0;
begin
  for expired in
    select s.job_table, s.job_id, s.account, s.holder from rhpool.slots s
    where s.lease_expires_at < now()
    order by s.lease_expires_at
    for update skip locked
  loop
    job := rhpool.lock_job(expired.job_table, expired.job_id);
    if job ->> 'status' = 'claimed' then
      -- Nothing was sent, but the holder died or hung with this job, perhaps on
      -- its input: the try counts an attempt (retry_later), so an input that
      -- crashes every dispatcher fails after max_attempts instead of looping.
      if rhpool.retry_later(expired.job_table, expired.job_id, 'LEASE_EXPIRED', 'claim expired: the dispatcher holding it stopped before sending', 0) = 'failed' then
        perform rhpool.log_repair('lease_expired_failed', expired.job_table, expired.job_id, expired.account, 'holder ' || coalesce(expired.holder, '?') || ', attempts used up');
      else
        perform rhpool.log_repair('lease_expired_requeued', expired.job_table, expired.job_id, expired.account, 'holder ' || coalesce(expired.holder, '?'));
      end if;
      repaired := repaired + 1;
    elsif job ->> 'status' = 'submitting' then
      perform rhpool.mark_outcome_unknown(expired.job_table, expired.job_id, 'the dispatcher stopped while submitting: waiting for the callback, never resubmitted');
      perform rhpool.log_repair('lease_expired_outcome_unknown', expired.job_table, expired.job_id, expired.account, 'holder ' || coalesce(expired.holder, '?'));
      repaired := repaired + 1;
    else
      update rhpool.slots s set lease_expires_at = null where s.job_table = expired.job_table and s.job_id = expired.job_id;
    end if;
  end loop;
  return repaired;
end
$$;

-- Callbacks kept because no job could take them yet are tried again; past the
-- window they are marked expired (and stay visible in the status).
create or replace function rhpool.retry_kept_callbacks()
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
    elsif kept.received_at < now() - make_interval(secs => window_seconds) then
      update rhpool.webhook_deliveries d set resolved_at = now(), resolution = 'expired: ' || result.detail where d.id = kept.id;
      perform rhpool.log_repair('kept_callback_expired', kept.job_table, kept.job_id, null, result.detail);
    end if;
  end loop;
  return applied;
end
$$;

-- Retention: recorded callbacks and processed terminal events older than
-- retention_days. The job rows are the product's and are never touched.
create or replace function rhpool.prune_history()
returns integer
language plpgsql
volatile
as $$
declare
  cutoff timestamptz := now() - make_interval(days => rhpool.setting('retention_days', '30')::integer);
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
create or replace function rhpool.end_cooldowns()
returns integer
language plpgsql
volatile
as $$
declare
  ended integer;
begin
  update rhpool.accounts a set cooldown_until = null, cooldown_reason = null, updated_at = now()
   where a.cooldown_until is not null and a.cooldown_until <= now();
  get diagnostics ended = row_count;
  if ended > 0 then
    perform pg_notify('rhpool_wakeup', 'cooldown ended');
  end if;
  return ended;
end
$$;

-- Account health, as the dispatcher's probe found it. The reported limit is
-- part of the effective one, so it changes under the admission lock.
create or replace function rhpool.record_account_health(account text, remain_money numeric, remain_coins numeric, reported_concurrency integer)
returns void
language sql
volatile
as $$
  select rhpool.lock_admission();
  update rhpool.accounts a
     set remain_money = coalesce(record_account_health.remain_money, a.remain_money),
         remain_coins = coalesce(record_account_health.remain_coins, a.remain_coins),
         reported_concurrency = coalesce(record_account_health.reported_concurrency, a.reported_concurrency),
         health_checked_at = now(), updated_at = now()
   where a.name = record_account_health.account
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
