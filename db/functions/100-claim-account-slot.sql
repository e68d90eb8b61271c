-- claim_account_slot(): the heart of rhpool.
--
-- Fills the free slots of usable accounts with the oldest eligible queued jobs
-- across every job table, atomically, and returns what it claimed in FIFO order.
--
--  * Never over a limit: admission is serialised by one advisory transaction
--    lock; under it the free slots are counted from rhpool.slots (filled slots,
--    not row positions) up to each account's effective limit (configured,
--    reported or learned, whichever is smallest: 045-account-limits.sql) and
--    the slot rows are inserted, each insert checked against the cap again by
--    the slots_cap trigger.
--  * Global FIFO: one index over rhpool.queue orders all tables by
--    priority desc, created_at, id.
--  * Strategies: 'fill-first' (account 1 until full, then 2, ...) and 'spread'
--    (every claim goes to the least loaded account, by share of its slots).
--  * Fast at any queue depth: it reads only as many queue rows as there are free
--    slots, straight off the index.
--
-- Must run in READ COMMITTED: each statement then sees the slots committed by
-- the previous holder of the lock.
create or replace function rhpool.claim_account_slot(
  max_jobs integer default 10,
  claimed_by text default null,
  lease_seconds integer default null,
  strategy text default null,
  -- the accounts this claimer holds keys for (null: any); see 060-dispatcher-presence.sql
  accounts text[] default null
)
returns table (job_table text, job_id uuid, api_account text)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
  chosen_strategy text := coalesce(strategy, rhpool.required_setting('strategy'));
  lease interval := make_interval(secs => coalesce(lease_seconds, rhpool.required_setting('lease_seconds')::integer));
  free_accounts text[];
  candidate_tables text[];
  candidate_ids uuid[];
  claimable_keys text[] := array[]::text[];
  claim_tables text[] := array[]::text[];
  claim_ids uuid[] := array[]::uuid[];
  claim_accounts text[] := array[]::text[];
  one_table text;
  locked_id uuid;
begin
  if max_jobs is null or max_jobs < 1 or max_jobs > 10000 then
    raise exception 'claim_account_slot: max_jobs must be between 1 and 10000, got %', coalesce(max_jobs::text, 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;
  if chosen_strategy not in ('fill-first', 'spread') then
    raise exception 'claim_account_slot: strategy must be ''fill-first'' or ''spread'', got %', quote_literal(chosen_strategy)
      using errcode = 'invalid_parameter_value';
  end if;
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'claim_account_slot: must run in a READ COMMITTED transaction, not %', current_setting('transaction_isolation')
      using errcode = 'invalid_transaction_state';
  end if;

  perform rhpool.lock_admission();

  -- Every free slot of every usable account, in the order the strategy fills them.
  select array_agg(free.name order by free.sort_load, free.position, free.slot_number)
    into free_accounts
  from (
    select a.name, a.position, slot.n as slot_number,
           -- spread: the load an account has before this slot is filled
           case when chosen_strategy = 'spread' then (slot.n - 1)::numeric / lim.effective else 0 end as sort_load
    from rhpool.accounts a
    cross join lateral rhpool.account_limits(a, now()) lim
    cross join lateral (select count(*)::integer as held from rhpool.slots s where s.account = a.name) load
    cross join lateral generate_series(load.held + 1, lim.effective) as slot(n)
    where a.enabled
      and (a.cooldown_until is null or a.cooldown_until <= now())
      and (claim_account_slot.accounts is null or a.name = any (claim_account_slot.accounts))
      and rhpool.account_held_for(a.name, a.key_fingerprint, claim_account_slot.claimed_by)
    order by 4, 2, 3
    limit max_jobs
  ) free;

  if free_accounts is null then
    return;
  end if;

  -- The oldest eligible queued jobs, as many as there are free slots.
  select array_agg(q.job_table order by q.priority desc, q.created_at, q.job_id),
         array_agg(q.job_id order by q.priority desc, q.created_at, q.job_id)
    into candidate_tables, candidate_ids
  from (
    select q.job_table, q.job_id, q.priority, q.created_at
    from rhpool.queue q
    where q.not_before is null or q.not_before <= now()
    order by q.priority desc, q.created_at, q.job_id
    limit cardinality(free_accounts)
    for update skip locked
  ) q;

  if candidate_ids is null then
    return;
  end if;

  -- Lock the job rows themselves; a row another transaction is changing right
  -- now (a cancel, say) is skipped rather than waited for.
  for one_table in select distinct t from unnest(candidate_tables) as t loop
    for locked_id in execute format(
      'select id from public.%I where id = any ($1) and status = ''queued'' for update skip locked', one_table)
      using (select array_agg(c.id) from unnest(candidate_tables, candidate_ids) as c(t, id) where c.t = one_table)
    loop
      claimable_keys := claimable_keys || (one_table || ':' || locked_id::text);
    end loop;
  end loop;

  -- Pair jobs (FIFO order) with free slots (strategy order).
  for i in 1 .. cardinality(candidate_ids) loop
    if (candidate_tables[i] || ':' || candidate_ids[i]::text) = any (claimable_keys) then
      claim_tables := claim_tables || candidate_tables[i];
      claim_ids := claim_ids || candidate_ids[i];
      claim_accounts := claim_accounts || free_accounts[cardinality(claim_ids)];
    end if;
  end loop;

  if cardinality(claim_ids) = 0 then
    return;
  end if;

  insert into rhpool.slots (job_table, job_id, account, lease_expires_at, holder)
  select c.t, c.id, c.account, now() + lease, claimed_by
  from unnest(claim_tables, claim_ids, claim_accounts) as c(t, id, account);

  for one_table in select distinct t from unnest(claim_tables) as t loop
    execute format(
      'update public.%I as j set status = ''claimed'', api_account = c.account
       from unnest($1, $2, $3) as c(t, id, account)
       where c.t = %L and j.id = c.id', one_table, one_table)
      using claim_tables, claim_ids, claim_accounts;
  end loop;

  return query
    select c.t, c.id, c.account
    from unnest(claim_tables, claim_ids, claim_accounts) with ordinality as c(t, id, account, ord)
    order by c.ord;
end
$$;
