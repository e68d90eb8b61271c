-- What RunningHub's answers do to an account, and what its health probe found.

-- "This account is full right now" even at one slot: stop giving it work for
-- a while, longer on each repeat (base × 2^streak, capped), so a busy account
-- is not hammered.
create or replace function rhpool.cool_down_account(account text, reason text default null, at timestamptz default now())
returns timestamptz
language plpgsql
volatile
as $$
declare
  base_seconds numeric := rhpool.setting('cooldown_base_seconds', '5')::numeric;
  max_seconds numeric := rhpool.setting('cooldown_max_seconds', '300')::numeric;
  until timestamptz;
begin
  update rhpool.accounts a
     set cooldown_until = cool_down_account.at + make_interval(secs => least(base_seconds * power(2, least(a.cooldown_streak, 20)), max_seconds)),
         cooldown_streak = a.cooldown_streak + 1,
         cooldown_reason = cool_down_account.reason,
         updated_at = now()
   where a.name = cool_down_account.account
  returning a.cooldown_until into until;
  return until;
end
$$;

-- A task was accepted: the account is healthy again, its cooldown streak ends.
-- Called by record_submission, in the transaction that records the task.
create or replace function rhpool.account_accepted_task(account text)
returns void
language plpgsql
volatile
as $$
begin
  update rhpool.accounts a set cooldown_streak = 0, updated_at = now()
   where a.name = account_accepted_task.account and a.cooldown_streak <> 0;
end
$$;

-- Out of rotation, with the reason visible in status. code says why, for every
-- reader (accounts_disabled_code_known, migration 000015): 'operator' (the
-- default: stays until an operator enables it), 'account_broken' (RunningHub
-- said bad key / no balance) or 'low_balance' (the health check); the health
-- check re-enables the last two once the key works again.
create or replace function rhpool.disable_account(account text, reason text, code text default 'operator')
returns void
language sql
volatile
as $$
  update rhpool.accounts a
     set enabled = false, disabled_reason = disable_account.reason, disabled_code = disable_account.code, updated_at = now()
   where a.name = disable_account.account
$$;

create or replace function rhpool.enable_account(account text)
returns void
language sql
volatile
as $$
  update rhpool.accounts a
     set enabled = true, disabled_reason = null, disabled_code = null, cooldown_until = null, cooldown_streak = 0, updated_at = now()
   where a.name = enable_account.account;
  select pg_notify('rhpool_wakeup', 'accounts');
$$;

-- The health check saw the key work again (accepted, balance above the
-- minimum): an account disabled for its key's state is back in rotation; one
-- an operator disabled stays out. True when it was re-enabled. The repair is
-- logged in the same transaction: whoever sees the account enabled sees why.
create or replace function rhpool.reenable_recovered_account(account text)
returns boolean
language plpgsql
volatile
as $$
declare
  was text;
begin
  select a.disabled_reason into was from rhpool.accounts a
   where a.name = reenable_recovered_account.account and not a.enabled
     and a.disabled_code in ('account_broken', 'low_balance')
   for update;
  if not found then
    return false;
  end if;
  perform rhpool.enable_account(reenable_recovered_account.account);
  perform rhpool.log_repair('account_reenabled', null, null, reenable_recovered_account.account, 'was: ' || coalesce(was, 'no reason given'));
  return true;
end
$$;

-- The health check saw the balance below the minimum: the account leaves
-- rotation before RunningHub refuses its work, and the repair is logged in the
-- same transaction (as reenable_recovered_account logs its return). Only an
-- account in rotation is taken out: one already out keeps its reason. True
-- when it was taken out.
create or replace function rhpool.disable_low_balance_account(account text, balance numeric, minimum numeric)
returns boolean
language plpgsql
volatile
as $$
begin
  update rhpool.accounts a
     set enabled = false, disabled_reason = format('balance %s below the minimum %s', disable_low_balance_account.balance, disable_low_balance_account.minimum),
         disabled_code = 'low_balance', updated_at = now()
   where a.name = disable_low_balance_account.account and a.enabled;
  if not found then
    return false;
  end if;
  perform rhpool.log_repair('account_low_balance_disabled', null, null, disable_low_balance_account.account, disable_low_balance_account.balance::text);
  return true;
end
$$;

-- RunningHub said "this account is full" for a job: in one transaction the
-- account's limit drops by one (or, at one slot, it cools down: see
-- learn_account_full) and the job goes back to its place with its attempt
-- given back, so no claim can see the job queued while the account still
-- looks free. Returns the cooldown's end, null when only the limit dropped.
create or replace function rhpool.account_was_full(job_table text, job_id uuid, claim_token bigint, account text, reason text)
returns timestamptz
language plpgsql
volatile
as $$
declare
  until timestamptz;
begin
  -- Under the claim only: a stale worker's refusal says nothing about the
  -- account the job is on now.
  if not rhpool.release_to_queue(account_was_full.job_table, account_was_full.job_id, account_was_full.claim_token, null) then
    return null;
  end if;
  until := (select l.cooldown_until from rhpool.learn_account_full(account_was_full.account, account_was_full.reason) l);
  return until;
end
$$;

-- RunningHub said "this account is broken" (bad key, no balance): disabled
-- with the reason, and the job back to its place for the other accounts, at once.
create or replace function rhpool.account_was_broken(job_table text, job_id uuid, claim_token bigint, account text, reason text)
returns void
language plpgsql
volatile
as $$
begin
  perform rhpool.disable_account(account_was_broken.account, account_was_broken.reason, 'account_broken');
  perform rhpool.release_to_queue(account_was_broken.job_table, account_was_broken.job_id, account_was_broken.claim_token, null);
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
