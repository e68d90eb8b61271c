-- Accounts as dispatchers declare them: the sync from a dispatcher's
-- configuration, and the view of each account's state it returns.

-- The process asking holds this account's recorded key: names and the
-- fingerprints of the keys it holds for them, aligned. A key that is not the
-- recorded one is another RunningHub account's: asking with it about a task
-- answers "no such task", which would refute a true callback.
-- PL/pgSQL, not SQL: asked once per held callback, and a SQL function with a
-- FROM clause is planned again on every call (effective_limit says why).
create or replace function rhpool.holds_recorded_key(account text, names text[], fingerprints text[])
returns boolean
language plpgsql
stable
as $$
begin
  return exists (
    select 1 from rhpool.accounts a
    join unnest(holds_recorded_key.names, holds_recorded_key.fingerprints) as held(name, fingerprint)
      on held.name = a.name and held.fingerprint = a.key_fingerprint
    where a.name = holds_recorded_key.account
  );
end
$$;

-- Whether an account may take work at a moment: enabled and not cooling
-- down. The one definition the claim (both of its reads of the accounts) and
-- the accounts' status use. One SQL expression, so the planner inlines it.
create or replace function rhpool.account_usable(account rhpool.accounts, at timestamptz)
returns boolean
language sql
immutable
as $$
  select account.enabled and (account.cooldown_until is null or account.cooldown_until <= at)
$$;

-- (Defined here, not with the other status views in 600-status.sql:
-- sync_accounts below returns setof rhpool.account_status, so the view must
-- exist before it is created.)
-- Per account: load, limit, and why it is not taking work (if it is not).
-- max_slots is the effective limit, the one admission counts against; beside
-- it the configured slots, RunningHub's reported limit, the learned one and
-- the reason the effective limit is below the configured slots. key_holders:
-- the live dispatchers holding its recorded key; with none, unheld_reason says
-- why it takes no work (120-dispatcher-presence.sql).
create or replace view rhpool.account_status as
select
  a.name,
  a.position,
  lim.effective as max_slots,
  coalesce(load.held, 0) as running,
  case when rhpool.account_usable(a, now()) and holders.n > 0
       then greatest(lim.effective - coalesce(load.held, 0), 0) else 0 end as available,
  a.enabled,
  a.disabled_reason,
  case when a.cooldown_until > now() then a.cooldown_until end as cooldown_until,
  case when a.cooldown_until > now() then a.cooldown_reason end as cooldown_reason,
  a.key_fingerprint,
  a.remain_money,
  a.remain_coins,
  a.reported_concurrency,
  a.health_checked_at,
  lim.configured as configured_slots,
  lim.learned as learned_limit,
  lim.reason as limit_reason,
  lim.next_probe_at,
  case when not a.enabled then a.disabled_code end as disabled_code,
  coalesce(holders.n, 0) as key_holders,
  -- rhpool.unheld_reason(a.name, a.key_fingerprint), from the one look at the
  -- live holders below (a function call per account and column cost ~0.1 ms
  -- an account, the bulk of pool_status with a hundred accounts).
  case
    when holders.n > 0 then null
    when holders.any_key is null then 'no live dispatcher holds its key'
    else 'no live dispatcher holds its key; live dispatchers hold another key for this name (a different RunningHub account, refused)'
  end as unheld_reason
from rhpool.accounts a
cross join lateral rhpool.account_limits(a, now()) lim
-- Live dispatchers declaring a key for the account: with its recorded key
-- (rhpool.live_key_holders) and with any. Counted once for all accounts and
-- joined by name: a look per account (a lateral count) was planned as a scan
-- of every declared key per account, 4 of pool_status's 5 ms at 200 accounts.
left join (
  select k.account, (count(*) filter (where k.key_fingerprint = recorded.key_fingerprint))::integer as n, count(*)::integer as any_key
  from rhpool.dispatcher_keys k
  join rhpool.dispatchers d on d.holder = k.holder
  join rhpool.accounts recorded on recorded.name = k.account
  where d.live_until > now()
  group by k.account
) holders on holders.account = a.name
left join (select r.account, count(*)::integer as held from rhpool.runs r where r.account is not null group by r.account) load on load.account = a.name;

-- Syncs accounts from a dispatcher's configuration (never the keys: name,
-- slots, order and a short fingerprint). It upserts the accounts it is given
-- and nothing else: an account missing from this list may be another
-- dispatcher's, so it is never disabled here. Whether an account takes work is
-- decided by who holds its key (120-dispatcher-presence.sql). Runs under the
-- admission lock so a slot change never races a claim.
--
-- A different key under a name whose recorded key a live dispatcher holds is
-- refused with an error: a different key is a different RunningHub account
-- (the dispatcher leaves such an account out and logs why). Once no live
-- dispatcher holds the recorded key, a sync records the new one, and what
-- belonged to the old key (broken, low balance, cooldown, learned and reported
-- limits, balance) is cleared.
--
-- A dispatcher declares its keys (rhpool.dispatcher_heartbeat) before it syncs,
-- in the same transaction, so its own previous key never counts against it;
-- the slots then settle to the lowest any live holder declares.
--
-- accounts: [{"name": "primary", "slots": 3, "position": 1, "fingerprint": "ab12…"}]
create or replace function rhpool.sync_accounts(accounts jsonb)
returns setof rhpool.account_status
language plpgsql
volatile
as $$
#variable_conflict use_variable
declare
  entry jsonb;
  recorded rhpool.accounts;
  names text[];
begin
  if accounts is null or jsonb_typeof(accounts) <> 'array' then
    raise exception 'sync_accounts: accounts must be a JSON array' using errcode = 'invalid_parameter_value';
  end if;
  perform rhpool.lock_admission();

  for entry in select value from jsonb_array_elements(accounts) loop
    if jsonb_typeof(entry -> 'name') <> 'string' or jsonb_typeof(entry -> 'slots') <> 'number' then
      raise exception 'sync_accounts: each account needs a string name and a number of slots, got %', entry
        using errcode = 'invalid_parameter_value';
    end if;
    select * into recorded from rhpool.accounts a where a.name = entry ->> 'name';
    if recorded.key_fingerprint is not null and recorded.key_fingerprint is distinct from entry ->> 'fingerprint'
       and rhpool.live_key_holders(recorded.name, recorded.key_fingerprint) > 0 then
      raise exception 'sync_accounts: account % is held by a live dispatcher with key %, this configuration has key % for it',
          recorded.name, recorded.key_fingerprint, coalesce(entry ->> 'fingerprint', 'none')
        using errcode = 'unique_violation',
              hint = 'A different key is a different RunningHub account: give it its own number (RUNNINGHUB_API_KEY_<n>), or stop the dispatchers holding the old key first.';
    end if;
    insert into rhpool.accounts as a (name, position, slots, enabled, disabled_reason, disabled_code, key_fingerprint)
    values (entry ->> 'name', coalesce((entry ->> 'position')::integer, 1), (entry ->> 'slots')::integer, true, null, null, entry ->> 'fingerprint')
    on conflict (name) do update set
      position = excluded.position,
      slots = excluded.slots,
      key_fingerprint = excluded.key_fingerprint,
      -- A new key (a new account behind the name) starts without the old
      -- key's broken or low-balance state; an operator's disable stays.
      enabled = case when a.key_fingerprint is distinct from excluded.key_fingerprint and a.disabled_code in ('account_broken', 'low_balance')
                     then true else a.enabled end,
      disabled_reason = case when a.key_fingerprint is distinct from excluded.key_fingerprint and a.disabled_code in ('account_broken', 'low_balance')
                             then null else a.disabled_reason end,
      disabled_code = case when a.key_fingerprint is distinct from excluded.key_fingerprint and a.disabled_code in ('account_broken', 'low_balance')
                           then null else a.disabled_code end,
      updated_at = now();
    -- What was learned about the old key's RunningHub account is not this one's.
    if recorded.key_fingerprint is not null and recorded.key_fingerprint is distinct from entry ->> 'fingerprint' then
      update rhpool.accounts a
         set cooldown_until = null, cooldown_streak = 0, cooldown_reason = null,
             learned_limit = null, learned_at = null, learned_reason = null,
             reported_concurrency = null, remain_money = null, remain_coins = null, health_checked_at = null
       where a.name = recorded.name;
    end if;
  end loop;

  select array_agg(e.value ->> 'name') into names from jsonb_array_elements(accounts) e;
  perform rhpool.settle_account_slots(coalesce(names, array[]::text[]));
  perform pg_notify('rhpool_wakeup', 'accounts');
  return query select * from rhpool.account_status order by position, name;
end
$$;
