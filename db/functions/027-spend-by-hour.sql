-- What each account's completed jobs cost, per hour, kept as the queue's
-- counts are (025-queue-counts.sql; tables: migration 000019), so the
-- dashboard never reads the day's job rows.
--
--  * The transaction that completes a job (settle_job) appends one row to
--    rhpool.spend_journal: its account, the hour, its cost in money. No
--    counter row is updated there, so completions of one account never wait
--    for one another, and two transactions completing jobs of two accounts in
--    opposite orders cannot deadlock on them.
--  * fold_spend_journal() sums the journal's committed rows into
--    rhpool.spend_by_hour and deletes them, in one transaction, one fold at a
--    time; it is called wherever the queue's journal is folded (every
--    RHPOOL_QUEUE_FOLD_INTERVAL_MS in a dispatcher, every maintenance round).
--  * spent_since() reads both in one snapshot: each completion is counted
--    once, in the journal or in its hour.

-- The hours kept: the dashboard reads the last 24 whole hours and the current one.
create or replace function rhpool.fold_spend_journal()
returns integer
language plpgsql
volatile
as $$
declare
  folded integer;
begin
  -- One fold at a time (rhpool's advisory locks are (7263541, n): 010-settings.sql
  -- has 1, maintenance 2, the queue's fold 3).
  if not pg_try_advisory_xact_lock(7263541, 4) then
    return 0;
  end if;
  with moved as (
    delete from rhpool.spend_journal j returning j.account, j.hour, j.money
  ), sums as (
    select m.account, m.hour, count(*) as completed, sum(m.money) as money
    from moved m
    group by m.account, m.hour
  ), added as (
    insert into rhpool.spend_by_hour as s (account, hour, completed, money)
    select x.account, x.hour, x.completed, x.money from sums x
    on conflict on constraint spend_by_hour_pkey
    do update set completed = s.completed + excluded.completed, money = s.money + excluded.money
    returning 1
  )
  select coalesce(sum(x.completed), 0)::integer into folded from sums x;
  delete from rhpool.spend_by_hour s where s.hour < date_trunc('hour', now() - interval '48 hours');
  return folded;
end
$$;

-- Per account, the jobs completed since the start of the hour `since` falls
-- in, and their cost in money: the hours folded plus the journal, read
-- together. Inlined into the query that calls it (one snapshot).
create or replace function rhpool.spent_since(since timestamptz)
returns table (account text, completed bigint, money numeric)
language sql
stable
as $$
  select k.account, sum(k.completed)::bigint, sum(k.money)
  from (
    select s.account, s.completed, s.money from rhpool.spend_by_hour s where s.hour >= date_trunc('hour', spent_since.since)
    union all
    select j.account, 1, j.money from rhpool.spend_journal j where j.hour >= date_trunc('hour', spent_since.since)
  ) k
  group by k.account
$$;

-- Every journal folded in, each by its own fold: the queue's counts
-- (025-queue-counts.sql) and the spend's hours. What the dispatchers call every
-- RHPOOL_QUEUE_FOLD_INTERVAL_MS and maintenance every round, so a journal added
-- here is folded by both. Returns how many queue moves were folded (0 when
-- another fold of the queue runs).
create or replace function rhpool.fold_journals()
returns integer
language plpgsql
volatile
as $$
declare
  queue_moves integer := rhpool.fold_queue_journal();
begin
  perform rhpool.fold_spend_journal();
  return queue_moves;
end
$$;
