-- claim_account_slot(): the heart of rhpool.
--
-- Fills the free slots of usable accounts with the oldest eligible queued jobs
-- across every job table, atomically, and returns what it claimed in FIFO
-- order, each with the claim's token: every later step names it, and a step
-- under a claim that was recovered is refused (210-submission.sql).
--
--  * Never over a limit: admission is serialised by one advisory transaction
--    lock; under it the free slots are counted from rhpool.runs (the jobs in
--    flight, by account) up to each account's effective limit (configured,
--    reported or learned, whichever is smallest: 100-account-limits.sql), and
--    each run that takes a slot is checked against the cap again by the
--    runs_slot_cap trigger.
--  * Global FIFO: one partial index over rhpool.runs orders the queued jobs of
--    all tables by priority desc, fifo_at, job_id.
--  * Strategies: 'fill-first' (account 1 until full, then 2, ...) and 'spread'
--    (every claim goes to the least loaded account, by share of its slots).
--    The live setting decides unless the caller names one.
--  * accounts: only these accounts' slots are filled (a dispatcher claims for
--    the accounts it holds keys for); null: every usable account.
--  * at: the time the claim is decided at (leases, not-before, cooldowns).
--  * Fast at any queue depth: it reads only as many queued runs as there are
--    free slots, straight off the index.
--
-- Must run in READ COMMITTED: each statement then sees the runs committed by
-- the previous holder of the lock.
create or replace function rhpool.claim_account_slot(
  max_jobs integer default 10,
  claimed_by text default null,
  lease_seconds integer default null,
  strategy text default null,
  -- the accounts this claimer holds keys for (null: any); see 120-dispatcher-presence.sql
  accounts text[] default null,
  at timestamptz default now()
)
returns table (job_table text, job_id uuid, api_account text, claim_token bigint)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
  chosen_strategy text := coalesce(strategy, rhpool.required_setting('strategy'));
  lease interval := make_interval(secs => coalesce(lease_seconds, rhpool.required_setting('lease_seconds')::integer));
  open_accounts text[];
  free_accounts text[];
  claim_tables text[];
  claim_ids uuid[];
  claim_accounts text[];
  usable_claims integer;
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

  -- The accounts that can have a free slot: usable, and fewer slots in use
  -- than configured (the effective limit is never above the configured slots,
  -- account_limits). The slots in use are counted once for all accounts, so a
  -- busy pool of 100 accounts costs a claim little more than one of 1: only
  -- the accounts left are looked at further.
  select array_agg(a.name)
    into open_accounts
  from rhpool.accounts a
  left join (select r.account, count(*)::integer as held from rhpool.runs r where r.account is not null group by r.account) load
    on load.account = a.name
  where rhpool.account_usable(a, claim_account_slot.at)
    and (claim_account_slot.accounts is null or a.name = any (claim_account_slot.accounts))
    and coalesce(load.held, 0) < a.slots;

  -- A dispatcher claims while some live dispatcher holds the account's key
  -- (120-dispatcher-presence.sql, accounts_held_for), asked for those accounts
  -- at once. A claim round (no claimer: pg_cron) does not ask: it runs while no
  -- dispatcher is awake, and what nobody adopts goes back to the queue with its
  -- attempt.
  if open_accounts is not null and claimed_by is not null then
    open_accounts := rhpool.accounts_held_for(claimed_by, open_accounts, claim_account_slot.at);
  end if;
  if open_accounts is null or cardinality(open_accounts) = 0 then
    return;
  end if;

  -- Every free slot of those accounts, in the order the strategy fills them.
  free_accounts := rhpool.free_slots(open_accounts, chosen_strategy, max_jobs, claim_account_slot.at);

  if free_accounts is null then
    return;
  end if;

  -- The oldest eligible queued runs, as many as there are free slots, paired
  -- (FIFO order) with the free slots (strategy order). A run or a product row
  -- another transaction holds right now (a cancel, another claim) is skipped
  -- rather than waited for: neither lock is ever waited on here, so the lock
  -- order of 020-job-rows.sql cannot deadlock with a claim.
  with candidates as (
    select r.job_table, r.job_id, r.priority, r.fifo_at
    from rhpool.runs r
    where r.status = 'queued' and (r.not_before is null or r.not_before <= claim_account_slot.at)
    order by r.priority desc, r.fifo_at, r.job_id
    limit cardinality(free_accounts)
    for update skip locked
  ), rows_locked as (
    select j.tableoid as relation, j.id
    from rhpool.job_rows j
    -- An array, not a join: each job table is probed by its primary key for
    -- these few ids, whatever the planner guesses of the candidates.
    where j.id = any (array(select c.job_id from candidates c)) and j.status = 'queued'
    for update of j skip locked
  ), lockable as (
    select c.job_table, c.job_id, c.priority, c.fifo_at
    from candidates c
    join rhpool.tools t on t.job_table = c.job_table
    join rows_locked l on l.relation = t.relation and l.id = c.job_id
  ), paired as (
    select l.job_table, l.job_id,
           row_number() over (order by l.priority desc, l.fifo_at, l.job_id) as ord
    from lockable l
  )
  select array_agg(p.job_table order by p.ord), array_agg(p.job_id order by p.ord), array_agg(free_accounts[p.ord] order by p.ord)
    into claim_tables, claim_ids, claim_accounts
  from paired p;

  if claim_ids is null then
    return;
  end if;

  -- The accounts again, as this statement sees them. Each statement of this
  -- function sees what was committed when it began, so a cooldown or a
  -- disable that committed while the claim ran (after the accounts were read
  -- above, before the queue was) would be missed, and a job inserted after
  -- it could still land on that account. Only the claims before the first
  -- such slot are made, so the queue's order holds; the rest stay queued.
  select coalesce(min(c.ord) - 1, cardinality(claim_ids))::integer
    into usable_claims
  from unnest(claim_accounts) with ordinality as c(account, ord)
  left join rhpool.accounts a on a.name = c.account
  where a.name is null
     or not rhpool.account_usable(a, claim_account_slot.at);
  if usable_claims = 0 then
    return;
  end if;
  claim_tables := claim_tables[1:usable_claims];
  claim_ids := claim_ids[1:usable_claims];
  claim_accounts := claim_accounts[1:usable_claims];

  perform rhpool.begin_transition();
  return query
  with claimed as (
    update rhpool.runs r
       set status = 'claimed', account = c.account, claim_token = nextval('rhpool.claim_tokens'),
           holder = claimed_by, lease_expires_at = claim_account_slot.at + lease, claimed_at = claim_account_slot.at
      from unnest(claim_tables, claim_ids, claim_accounts) with ordinality as c(t, id, account, ord)
     where r.job_table = c.t and r.job_id = c.id
    returning r.job_table, r.job_id, r.account, r.claim_token, c.ord
  ), shown as (
    update rhpool.job_rows j
       set status = 'claimed', api_account = c.account, claimed_at = claim_account_slot.at,
           queue_wait_seconds = greatest(0, extract(epoch from claim_account_slot.at - j.created_at))::integer,
           waited_in_queue = claim_account_slot.at - j.created_at > interval '1 second',
           updated_at = claim_account_slot.at
      from claimed c join rhpool.tools t on t.job_table = c.job_table
     where j.tableoid = t.relation and j.id = c.job_id
    returning j.id
  )
  select c.job_table, c.job_id, c.account, c.claim_token
  from claimed c
  order by c.ord;
end
$$;

-- The free slots of these accounts, at most max_jobs, as account names in the
-- order the strategy fills them: fill-first by position, spread by the share
-- of its slots each account would hold before the slot is filled (ties by
-- position). A slot is one between the runs the account holds and its
-- effective limit. Part of the claim; runs under its admission lock.
--
-- A generic plan, made once for the session: with a custom plan this one
-- statement was planned at every claim (1.3 ms, more than the rest of the
-- claim's planning together; bench/profile.ts). Every table it reads is
-- small (the accounts) or read by index (each account's runs), whatever the
-- parameters, so the generic plan is the custom one.
create or replace function rhpool.free_slots(open_accounts text[], strategy text, max_jobs integer, at timestamptz)
returns text[]
language plpgsql
stable
set plan_cache_mode = force_generic_plan
as $$
begin
  return (
    select array_agg(free.name order by free.sort_load, free.position, free.slot_number)
    from (
      select a.name, a.position, slot.n as slot_number,
             -- spread: the load an account has before this slot is filled
             case when free_slots.strategy = 'spread' then (slot.n - 1)::numeric / lim.effective else 0 end as sort_load
      from rhpool.accounts a
      cross join lateral rhpool.account_limits(a, free_slots.at) lim
      cross join lateral (select count(*)::integer as held from rhpool.runs r where r.account = a.name) load
      cross join lateral generate_series(load.held + 1, lim.effective) as slot(n)
      where a.name = any (free_slots.open_accounts)
      order by 4, 2, 3
      limit free_slots.max_jobs
    ) free);
end
$$;

-- A claim round in the database itself (pg_cron runs it every minute, see
-- db/cron): queued jobs get their account with no dispatcher awake. Its
-- claims have no holder; a dispatcher holding the account's key adopts them
-- (adopt_claims) and submits them. One nobody adopts within its lease goes
-- back to the queue with its attempt given back (expire_leases): nothing was
-- tried. Returns how many jobs it claimed.
create or replace function rhpool.claim_round(max_jobs integer default 100, at timestamptz default now())
returns integer
language plpgsql
volatile
as $$
declare
  claimed integer;
begin
  select count(*)::integer into claimed
  from rhpool.claim_account_slot(claim_round.max_jobs, null,
    rhpool.setting('unadopted_claim_seconds', '120')::integer, null, null, claim_round.at);
  if claimed > 0 then
    perform pg_notify('rhpool_wakeup', 'claimed');
  end if;
  return claimed;
end
$$;

-- The claims a claim round made (no holder) on accounts this dispatcher holds
-- keys for, taken over: each gets this holder, a new token and a lease, as if
-- the dispatcher had claimed it itself. A run another transaction holds is
-- skipped, never waited for. PL/pgSQL with a generic plan, for the plan's
-- sake: every claim calls it, and as a SQL function (or with custom plans)
-- its statement was planned again at each call (0.25 ms; bench/profile.ts).
create or replace function rhpool.adopt_claims(
  claimed_by text, accounts text[], max_jobs integer default 10, lease_seconds integer default null, at timestamptz default now()
)
returns table (job_table text, job_id uuid, api_account text, claim_token bigint)
language plpgsql
volatile
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
  return query
  with orphans as (
    select r.job_table, r.job_id
    from rhpool.runs r
    -- (account is not null: the generic plan's index, runs_in_flight, by its own predicate)
    where r.status = 'claimed' and r.holder is null and r.account is not null and r.account = any (adopt_claims.accounts)
    order by r.claimed_at, r.job_id
    limit adopt_claims.max_jobs
    for update skip locked
  )
  update rhpool.runs r
     set holder = adopt_claims.claimed_by, claim_token = nextval('rhpool.claim_tokens'),
         lease_expires_at = adopt_claims.at + make_interval(secs => coalesce(adopt_claims.lease_seconds, rhpool.required_setting('lease_seconds')::integer))
    from orphans o
   where r.job_table = o.job_table and r.job_id = o.job_id
  returning r.job_table, r.job_id, r.account, r.claim_token;
end
$$;

-- A dispatcher's claim, in one round trip and one transaction: the claims a
-- claim round left for its accounts first (adopt_claims: they waited
-- longest), then new ones (claim_account_slot) up to max_jobs, each with the
-- job's row and its tool's definition, as claimed_job() answers them (the
-- dispatcher uploads inputs and builds the request from those). The rows are
-- read in this transaction, after the claim: each is the row as its claim
-- left it.
create or replace function rhpool.claim_for_dispatcher(
  claimed_by text, accounts text[], max_jobs integer default 10, lease_seconds integer default null, at timestamptz default now()
)
returns table (job_table text, job_id uuid, api_account text, claim_token bigint, job jsonb, tool jsonb)
language plpgsql
volatile
as $$
#variable_conflict use_column
declare
  claim_tables text[];
  claim_ids uuid[];
  claim_accounts text[];
  claim_tokens bigint[];
  adopted integer;
  claimed_table text;
  table_rows jsonb;
  job_rows_read jsonb := '{}'::jsonb;
begin
  if claimed_by is null then
    raise exception 'claim_for_dispatcher: claimed_by is required (a claim with no holder is a claim round''s)'
      using errcode = 'null_value_not_allowed';
  end if;
  -- Adopted claims first, then new ones, in the order each function answers them.
  with answered as (
    select a.job_table, a.job_id, a.api_account, a.claim_token, a.ord
    from rhpool.adopt_claims(claimed_by, claim_for_dispatcher.accounts, max_jobs, lease_seconds, claim_for_dispatcher.at)
         with ordinality as a(job_table, job_id, api_account, claim_token, ord)
  )
  select coalesce(array_agg(a.job_table order by a.ord), '{}'), coalesce(array_agg(a.job_id order by a.ord), '{}'),
         coalesce(array_agg(a.api_account order by a.ord), '{}'), coalesce(array_agg(a.claim_token order by a.ord), '{}')
    into claim_tables, claim_ids, claim_accounts, claim_tokens
  from answered a;
  adopted := cardinality(claim_ids);
  if adopted < max_jobs then
    select claim_tables || coalesce(array_agg(c.job_table order by c.ord), '{}'), claim_ids || coalesce(array_agg(c.job_id order by c.ord), '{}'),
           claim_accounts || coalesce(array_agg(c.api_account order by c.ord), '{}'), claim_tokens || coalesce(array_agg(c.claim_token order by c.ord), '{}')
      into claim_tables, claim_ids, claim_accounts, claim_tokens
    from rhpool.claim_account_slot(max_jobs - adopted, claimed_by, lease_seconds, null, claim_for_dispatcher.accounts, claim_for_dispatcher.at)
         with ordinality as c(job_table, job_id, api_account, claim_token, ord);
  end if;
  if cardinality(claim_ids) = 0 then
    return;
  end if;

  -- Each job table read once, by primary key, for all its claimed rows.
  for claimed_table in select distinct t from unnest(claim_tables) as u(t) loop
    execute format('select jsonb_object_agg(j.id::text, to_jsonb(j)) from %s j where j.id = any ($1)', rhpool.job_relation(claimed_table))
      into table_rows
      using array(select c.id from unnest(claim_tables, claim_ids) as c(t, id) where c.t = claimed_table);
    job_rows_read := job_rows_read || coalesce(table_rows, '{}');
  end loop;
  return query
  select c.t, c.id, c.account, c.token, job_rows_read -> c.id::text,
         rhpool.tool_definition(tl)
  from unnest(claim_tables, claim_ids, claim_accounts, claim_tokens) with ordinality as c(t, id, account, token, ord)
  join rhpool.tools tl on tl.job_table = c.t
  order by c.ord;
end
$$;

-- Whether any of these accounts has a slot no run holds (its configured slots,
-- usable now or not). When none has, no claim for them can succeed until a run
-- gives a slot back, or an account, a limit or a cooldown changes; each of
-- those announces itself on rhpool_wakeup ('slot', 'accounts', 'limits',
-- 'cooldown ended', 'claimed'), while a job entering the queue ('queued') never
-- frees one. A dispatcher asks after a claim that came back empty, and while
-- the answer is no it does not claim on 'queued' (a claim per insert, each
-- finding nothing, was the largest cost of a full pool with a backlog).
create or replace function rhpool.slot_free_among(accounts text[])
returns boolean
language sql
stable
as $$
  select exists (
    select 1 from rhpool.accounts a
    where a.name = any (slot_free_among.accounts)
      and a.slots > (select count(*) from rhpool.runs r where r.account = a.name)
  )
$$;
