-- An account's limits, and the one admission counts against.
--
--  * configured: the slots the operator set (a guess: RunningHub publishes no number);
--  * reported:   RunningHub's own concurrentLimit (queue/status), where it answers;
--  * learned:    what recent refusals (421 and kin) showed: one less than was
--                tried, growing back by one (a probe) after every
--                limit_probe_after_seconds without another refusal.
--
-- effective = the smallest of the three. claim_account_slot() and the
-- slots_cap trigger count against it (guarantee 1); status shows all four and
-- why the effective one is lower. The time is a parameter, so tests ask "what
-- is the limit a minute from now" instead of sleeping.

-- The learned limit at a time: no state is rewritten for a probe, so a probe
-- needs no timer and every reader agrees on it.
create or replace function rhpool.learned_limit_at(learned_limit integer, learned_at timestamptz, at timestamptz)
returns integer
language sql
stable
as $$
  select case when learned_limit is not null then
    least(learned_limit::bigint
          + floor(greatest(extract(epoch from at - learned_at), 0)
                  / greatest(rhpool.setting('limit_probe_after_seconds', '60')::numeric, 1))::bigint,
          100000)::integer
  end
$$;

create or replace function rhpool.account_limits(account rhpool.accounts, at timestamptz default now())
returns table (configured integer, reported integer, learned integer, effective integer, reason text, next_probe_at timestamptz)
language sql
stable
as $$
  select l.configured,
         l.reported,
         -- A learned limit that grew back to the configured slots says nothing more.
         case when l.learned < l.configured then l.learned end,
         least(l.configured, coalesce(l.reported, l.configured), coalesce(l.learned, l.configured)),
         case
           when l.learned < l.configured and l.learned <= coalesce(l.reported, l.learned) then
             format('learned from a refusal (%s); probing %s after %s s without another',
                    coalesce(account.learned_reason, 'account full'), l.learned + 1, l.probe_seconds)
           when l.reported < l.configured then
             format('RunningHub reports concurrentLimit %s', l.reported)
         end,
         case when l.learned < least(l.configured, coalesce(l.reported, l.configured)) then
           account.learned_at + make_interval(secs => l.probe_seconds * (
             floor(greatest(extract(epoch from at - account.learned_at), 0) / l.probe_seconds) + 1))
         end
  from (
    select account.slots as configured,
           -- (greatest() would turn a missing report into 0: nulls are skipped)
           case when account.reported_concurrency is not null then greatest(account.reported_concurrency, 0) end as reported,
           rhpool.learned_limit_at(account.learned_limit, account.learned_at, at) as learned,
           greatest(rhpool.setting('limit_probe_after_seconds', '60')::numeric, 1) as probe_seconds
  ) l
$$;

-- The effective limit of one account by name (null: no such account).
-- PL/pgSQL, not SQL: the slot cap asks it for every run that takes a slot,
-- and a SQL function with a FROM clause is planned again on every call
-- (0.09 ms, a third of a claim's planning; bench/profile.ts). PL/pgSQL keeps
-- the plan for the session (020-job-rows.sql says the same of the job's path).
create or replace function rhpool.effective_limit(account text, at timestamptz default now())
returns integer
language plpgsql
stable
as $$
begin
  return (
    select lim.effective
    from rhpool.accounts a cross join lateral rhpool.account_limits(a, effective_limit.at) lim
    where a.name = effective_limit.account);
end
$$;

-- RunningHub said "this account is full" at a time. Above one slot, the
-- account's learned limit drops by one and that is all: once the refused job
-- is back in the queue the account is at its new limit, so nothing more is
-- sent to it until one of its tasks ends — the lower limit is the back-off,
-- and the account keeps running every task it really can (no cooldown idles
-- the slots that work). At one slot there is nothing left to lower: RunningHub
-- is refusing even one task (busy, out of machines), so the whole account cools
-- down, longer on each repeat. Either way the probe clock restarts.
-- Runs under the admission lock: no claim interleaves with a lower limit.
create or replace function rhpool.learn_account_full(account text, reason text, at timestamptz default now())
returns table (limit_before integer, limit_after integer, cooldown_until timestamptz)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
  acc rhpool.accounts;
  before integer;
  until timestamptz;
begin
  perform rhpool.lock_admission();
  select * into acc from rhpool.accounts a where a.name = learn_account_full.account for update;
  if not found then
    return;
  end if;
  select lim.effective into before from rhpool.account_limits(acc, learn_account_full.at) lim;
  update rhpool.accounts a
     set learned_limit = greatest(before - 1, 1),
         learned_at = learn_account_full.at,
         learned_reason = left(learn_account_full.reason, 200),
         updated_at = now()
   where a.name = learn_account_full.account;
  if before <= 1 then
    until := rhpool.cool_down_account(learn_account_full.account, learn_account_full.reason, learn_account_full.at);
  end if;
  return query select before, greatest(before - 1, 1), until;
end
$$;

-- A learned limit that has grown back to what the account allows anyway is
-- cleared (status then shows nothing learned); dispatchers are woken when a
-- probe gave an account room. Called by run_maintenance().
create or replace function rhpool.forget_outgrown_limits(at timestamptz default now())
returns integer
language plpgsql
volatile
as $$
declare
  cleared integer;
begin
  update rhpool.accounts a
     set learned_limit = null, learned_at = null, learned_reason = null, updated_at = now()
   where a.learned_limit is not null
     and rhpool.learned_limit_at(a.learned_limit, a.learned_at, forget_outgrown_limits.at) >= a.slots;
  get diagnostics cleared = row_count;
  if cleared > 0 then
    perform pg_notify('rhpool_wakeup', 'limits');
  end if;
  return cleared;
end
$$;
