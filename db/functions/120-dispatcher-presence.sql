-- Dispatcher presence: which live dispatcher holds which account's key.
--
-- Several dispatchers may run with different key sets (a rolling deploy that
-- adds a key, a process per region, ...). Each declares on a heartbeat the
-- accounts it holds a key for, with the key's fingerprint and the slots its
-- configuration gives them (rhpool.dispatcher_heartbeat), and removes its
-- presence on a clean stop (rhpool.dispatcher_leave). One that dies stops
-- counting once its own staleness bound (live_until) has passed.
--
-- The rules (docs/design.md, "Several dispatchers"):
--  * An account takes work while some live dispatcher holds its key with the
--    fingerprint recorded on the account. Nobody disables an account because
--    its own list lacks it: an account nobody holds is simply not claimable,
--    and rhpool.account_status says so (unheld_reason).
--  * A different key under the same name is a different RunningHub account. While
--    a live dispatcher holds the recorded key, another key for that name is
--    refused (sync_accounts raises; the dispatcher logs it and runs without
--    that account); once no live dispatcher holds the recorded key, the next
--    dispatcher to sync records its own.
--  * Slots: the account runs with the lowest any live holder of its key
--    declares, recomputed when a dispatcher joins, heartbeats or leaves.
--
-- Time is a parameter (now_at) wherever it decides staleness, so a test moves
-- the clock instead of sleeping.

-- How many live dispatchers hold this account's key with this fingerprint.
-- PL/pgSQL, as the other functions every claim calls (020-job-rows.sql says why).
create or replace function rhpool.live_key_holders(account text, fingerprint text, now_at timestamptz default now())
returns integer
language plpgsql
stable
as $$
begin
  -- From the live dispatchers (a few, by dispatchers_live_until) to their key
  -- for this account (by primary key): the dead ones stay an hour, one per
  -- restart, and must not be visited. MATERIALIZED keeps that order whatever
  -- the estimates.
  return (
    with live as materialized (
      select d.holder from rhpool.dispatchers d where d.live_until > live_key_holders.now_at
    )
    select count(*)::integer
    from live
    join rhpool.dispatcher_keys k on k.holder = live.holder and k.account = live_key_holders.account
    where k.key_fingerprint = live_key_holders.fingerprint);
end
$$;

-- The claim's condition (claim_account_slot), for many accounts at once: of
-- account_names, those some live dispatcher holds the recorded key of and,
-- when the claimer declared a key for the account, declared that one (a
-- dispatcher whose key was replaced while it was away must not submit with
-- its old key). One query, not one per account.
create or replace function rhpool.accounts_held_for(claimed_by text, account_names text[], now_at timestamptz default now())
returns text[]
language plpgsql
stable
-- Planned once for the session: custom plans made it 0.25 ms of planning per
-- claim (bench/profile.ts); the tables are small and read by key either way.
set plan_cache_mode = force_generic_plan
as $$
begin
  return array(
    with live as materialized (
      select d.holder from rhpool.dispatchers d where d.live_until > accounts_held_for.now_at
    )
    select a.name
    from rhpool.accounts a
    where a.name = any (accounts_held_for.account_names)
      and exists (select 1 from live join rhpool.dispatcher_keys k on k.holder = live.holder and k.account = a.name
                  where k.key_fingerprint = a.key_fingerprint)
      and not exists (select 1 from rhpool.dispatcher_keys k
                      where k.holder = accounts_held_for.claimed_by and k.account = a.name
                        and k.key_fingerprint is distinct from a.key_fingerprint));
end
$$;

-- Why an account takes no work for want of a key holder; null while one holds
-- it. No fingerprint here (pool_status shows this to clients); which
-- dispatcher holds which key is in rhpool.dispatcher_status.
create or replace function rhpool.unheld_reason(account text, fingerprint text, now_at timestamptz default now())
returns text
language sql
stable
as $$
  select case
    when rhpool.live_key_holders(unheld_reason.account, unheld_reason.fingerprint, unheld_reason.now_at) > 0 then null
    when not exists (
      select 1 from rhpool.dispatcher_keys k join rhpool.dispatchers d on d.holder = k.holder
      where k.account = unheld_reason.account and d.live_until > unheld_reason.now_at)
      then 'no live dispatcher holds its key'
    else 'no live dispatcher holds its key; live dispatchers hold another key for this name (a different RunningHub account, refused)'
  end
$$;

-- The account's slots are the lowest any live holder of its key declares.
-- Changes slots only under the admission lock, and only when they differ, so
-- a heartbeat that changes nothing never waits for a claim.
create or replace function rhpool.settle_account_slots(account_names text[], now_at timestamptz default now())
returns void
language plpgsql
volatile
as $$
declare
  pending boolean;
begin
  select exists (
    select 1
    from rhpool.accounts a
    join lateral (
      -- live dispatchers first, as in live_key_holders
      with live as materialized (
        select d.holder from rhpool.dispatchers d where d.live_until > settle_account_slots.now_at
      )
      select min(k.slots) as slots
      from live
      join rhpool.dispatcher_keys k on k.holder = live.holder and k.account = a.name
      where k.key_fingerprint = a.key_fingerprint
    ) held on held.slots is not null
    where a.name = any (settle_account_slots.account_names) and a.slots <> held.slots
  ) into pending;
  if not pending then
    return;
  end if;
  perform rhpool.lock_admission();
  update rhpool.accounts a
     set slots = held.slots, updated_at = now()
    from (
      select k.account, min(k.slots) as slots
      from rhpool.dispatcher_keys k
      join rhpool.dispatchers d on d.holder = k.holder
      join rhpool.accounts acc on acc.name = k.account and acc.key_fingerprint = k.key_fingerprint
      where k.account = any (settle_account_slots.account_names) and d.live_until > settle_account_slots.now_at
      group by k.account
    ) held
   where a.name = held.account and a.slots <> held.slots;
  perform pg_notify('rhpool_wakeup', 'accounts');
end
$$;

-- A dispatcher's heartbeat: it is live until now_at + stale_seconds and holds
-- exactly these keys: [{"name": "account_2", "fingerprint": "sha256:…", "slots": 3}].
-- Returns, per declared account, what the database makes of it:
--   held        the recorded fingerprint is this dispatcher's: it may claim there
--   other_key   another key is recorded; recorded_holders live dispatchers hold it
--               (0: nobody does, so a sync by this dispatcher would record its own)
--   no_account  there is no such account yet (a sync creates it)
-- Dispatchers forgotten for an hour past their bound are removed.
create or replace function rhpool.dispatcher_heartbeat(holder text, keys jsonb, stale_seconds numeric, now_at timestamptz default now())
returns table (account text, state text, key_fingerprint text, recorded_fingerprint text, recorded_holders integer, declared_slots integer, recorded_slots integer)
language plpgsql
volatile
as $$
#variable_conflict use_variable
declare
  entry jsonb;
  was_live boolean;
  changed integer := 0;
  n integer;
  names text[];
  dropped text[];
begin
  if holder is null or length(holder) = 0 then
    raise exception 'dispatcher_heartbeat: holder is required' using errcode = 'invalid_parameter_value';
  end if;
  if stale_seconds is null or stale_seconds <= 0 then
    raise exception 'dispatcher_heartbeat: stale_seconds must be positive, got %', coalesce(stale_seconds::text, 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;
  if keys is null or jsonb_typeof(keys) <> 'array' then
    raise exception 'dispatcher_heartbeat: keys must be a JSON array' using errcode = 'invalid_parameter_value';
  end if;
  for entry in select value from jsonb_array_elements(keys) loop
    if jsonb_typeof(entry -> 'name') is distinct from 'string' or jsonb_typeof(entry -> 'fingerprint') is distinct from 'string'
       or jsonb_typeof(entry -> 'slots') is distinct from 'number' then
      raise exception 'dispatcher_heartbeat: each key needs a string name, a string fingerprint and a number of slots, got %', entry
        using errcode = 'invalid_parameter_value';
    end if;
  end loop;
  select array_agg(distinct e.value ->> 'name') into names from jsonb_array_elements(keys) e;
  names := coalesce(names, array[]::text[]);

  select d.live_until > now_at into was_live from rhpool.dispatchers d where d.holder = dispatcher_heartbeat.holder;
  insert into rhpool.dispatchers as d (holder, started_at, heartbeat_at, live_until)
  values (holder, now_at, now_at, now_at + make_interval(secs => stale_seconds))
  on conflict on constraint dispatchers_pkey do update
    set heartbeat_at = excluded.heartbeat_at, live_until = excluded.live_until;
  if was_live is distinct from true then
    changed := 1;
  end if;

  -- The keys it no longer holds (a SIGHUP removed them), then the ones it holds.
  with gone as (
    delete from rhpool.dispatcher_keys k
     where k.holder = dispatcher_heartbeat.holder and not (k.account = any (names))
    returning k.account
  )
  select array_agg(g.account) into dropped from gone g;
  dropped := coalesce(dropped, array[]::text[]);
  names := names || dropped;
  insert into rhpool.dispatcher_keys as k (holder, account, key_fingerprint, slots)
  select holder, e.value ->> 'name', e.value ->> 'fingerprint', (e.value ->> 'slots')::integer
  from jsonb_array_elements(keys) e
  on conflict on constraint dispatcher_keys_pkey do update
    set key_fingerprint = excluded.key_fingerprint, slots = excluded.slots
    where (k.key_fingerprint, k.slots) is distinct from (excluded.key_fingerprint, excluded.slots);
  get diagnostics n = row_count;
  changed := changed + n + cardinality(dropped);

  delete from rhpool.dispatchers d where d.live_until < now_at - interval '1 hour';

  perform rhpool.settle_account_slots(names, now_at);
  if changed > 0 then
    perform pg_notify('rhpool_wakeup', 'accounts');
  end if;

  return query
    select k.account,
           case when a.name is null then 'no_account'
                when a.key_fingerprint is not distinct from k.key_fingerprint then 'held'
                else 'other_key' end,
           k.key_fingerprint,
           a.key_fingerprint,
           case when a.name is null then 0 else rhpool.live_key_holders(a.name, a.key_fingerprint, now_at) end,
           k.slots,
           a.slots
    from rhpool.dispatcher_keys k
    left join rhpool.accounts a on a.name = k.account
    where k.holder = dispatcher_heartbeat.holder
    order by a.position nulls last, k.account;
end
$$;

-- A clean stop: the dispatcher holds nothing any more. Accounts only it held
-- stop taking work at once; their running tasks still finish through the webhook.
create or replace function rhpool.dispatcher_leave(holder text)
returns void
language plpgsql
volatile
as $$
#variable_conflict use_variable
declare
  names text[];
begin
  select array_agg(k.account) into names from rhpool.dispatcher_keys k where k.holder = dispatcher_leave.holder;
  delete from rhpool.dispatchers d where d.holder = dispatcher_leave.holder;
  perform rhpool.settle_account_slots(coalesce(names, array[]::text[]));
  perform pg_notify('rhpool_wakeup', 'accounts');
end
$$;

-- The live dispatchers and the keys they hold, for status and the CLI.
create or replace view rhpool.dispatcher_status as
select d.holder,
       d.started_at,
       d.heartbeat_at,
       d.live_until,
       d.live_until > now() as live,
       coalesce(jsonb_agg(jsonb_build_object('account', k.account, 'key', k.key_fingerprint, 'slots', k.slots,
                                             'current', k.key_fingerprint is not distinct from a.key_fingerprint)
                          order by a.position nulls last, k.account) filter (where k.account is not null), '[]'::jsonb) as keys
from rhpool.dispatchers d
left join rhpool.dispatcher_keys k on k.holder = d.holder
left join rhpool.accounts a on a.name = k.account
group by d.holder, d.started_at, d.heartbeat_at, d.live_until;

