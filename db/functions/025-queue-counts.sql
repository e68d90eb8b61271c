-- The queue's counts, kept by the transactions that change the queue, so
-- that status, metrics, the dashboard and a job's position never count the
-- queue (tables: db/migrations/committed/000016-queue-counts.sql).
--
-- Who writes what:
--  * Every move of a run into or out of the queue ('queued', keyed by
--    priority, fifo_at and job id) — a job inserted queued, pending → queued,
--    a claim, a requeue (release, retry, lease expiry), a cancellation, a
--    deleted job row, a hand-written change of priority or fifo_at — is a
--    write of rhpool.runs, so one trigger on rhpool.runs sees them all. Its
--    WHEN clause lets every other update of a run (leases, task ids, checks,
--    submission steps) through at no cost.
--  * The trigger only appends a row to rhpool.queue_journal: the same counter
--    row updated many times in one transaction costs time quadratic in the
--    number of updates (every version stays until the transaction ends; 10k
--    updates of one row take 1 s here, 40k take 17 s), and a bulk INSERT of
--    jobs moves thousands of runs in one transaction.
--  * When the transaction commits, a deferred trigger (one per transaction,
--    on its first journal row) folds its journal rows into rhpool.queue_counts
--    with one INSERT ... ON CONFLICT: one row per key, however many runs moved.
--    The counter rows are thus locked only while the transaction commits.
--  * No hot row: a key's row held by another committing transaction is
--    skipped (SKIP LOCKED) and the delta goes to a new overflow row of that
--    key instead of waiting; maintenance merges overflow rows back
--    (merge_queue_counts). A transaction that is not READ COMMITTED writes
--    overflow rows only (locking a row changed after its snapshot would fail
--    it). Waits remain only on another transaction's insert of the same new
--    key, always in key order, so folds cannot deadlock one another.
--
-- Why it cannot drift: the counts change in the transaction that moves the
-- runs, before it commits, and nothing else writes them (clients have no right
-- on these tables; the functions here are the owner's). A rollback, of the
-- transaction or of a savepoint, takes its journal rows and its deferred fold
-- with it. TRUNCATE of rhpool.runs clears the counts. recount_queue() rebuilds
-- them from rhpool.runs, for a database whose triggers were off (or to prove
-- the point: test/queue-counts.test.ts compares the two).
--
-- Cost per move: the trigger's call and one journal row (insert, and its
-- delete at the fold); per transaction that moved runs: one fold, which
-- writes 4 keys per distinct (priority, fifo_at, id byte): level 3 per job
-- table and priority, level 2 and 1 per time bucket, level 0 per instant
-- (the last is usually a run's own row, created when it is queued and
-- deleted when it leaves).

-- fifo_at as an integer: microseconds since 1970-01-01 UTC (exact: fifo_at
-- has microsecond precision). The migration computes it the same way.
create or replace function rhpool.queue_instant(at timestamptz)
returns bigint
language sql
immutable
parallel safe
as $$
  select (extract(epoch from (at - timestamptz '1970-01-01 00:00:00+00')) * 1000000)::bigint
$$;

-- The first byte of a job id, which splits the jobs of one instant (a bulk
-- INSERT gives all its rows the transaction's created_at) into 256 parts.
create or replace function rhpool.queue_id_byte(job_id uuid)
returns smallint
language sql
immutable
parallel safe
as $$
  select get_byte(uuid_send(job_id), 0)::smallint
$$;

-- The smallest job id whose first byte is id_byte.
create or replace function rhpool.queue_id_floor(id_byte smallint)
returns uuid
language sql
immutable
parallel safe
as $$
  select (lpad(to_hex(id_byte::integer), 2, '0') || '000000-0000-0000-0000-000000000000')::uuid
$$;

-- AFTER INSERT, UPDATE or DELETE of a run that enters or leaves the queue
-- (the triggers' WHEN clauses): one journal row per move.
-- Runs as the writer of rhpool.runs, which is always rhpool (its functions,
-- or job_guard on a client's write): no SECURITY DEFINER, whose search_path
-- switch would cost more than the rest of this function.
create or replace function rhpool.journal_queue_move()
returns trigger
language plpgsql
as $$
declare
  me xid8 := pg_current_xact_id();
begin
  -- The transaction's first row since it last folded (or ever) arms the fold:
  -- queue_journal_first lets one first row per transaction in. Asked of the
  -- journal's unique index, not of a setting a client could set.
  if tg_op <> 'INSERT' and old.status = 'queued' then
    insert into rhpool.queue_journal (xact, job_table, priority, fifo_at, id_byte, delta, first)
    values (me, old.job_table, old.priority, old.fifo_at, get_byte(uuid_send(old.job_id), 0), -1, true)
    on conflict (xact) where first do nothing;
    if not found then
      insert into rhpool.queue_journal (xact, job_table, priority, fifo_at, id_byte, delta, first)
      values (me, old.job_table, old.priority, old.fifo_at, get_byte(uuid_send(old.job_id), 0), -1, false);
    end if;
  end if;
  if tg_op <> 'DELETE' and new.status = 'queued' then
    insert into rhpool.queue_journal (xact, job_table, priority, fifo_at, id_byte, delta, first)
    values (me, new.job_table, new.priority, new.fifo_at, get_byte(uuid_send(new.job_id), 0), 1, true)
    on conflict (xact) where first do nothing;
    if not found then
      insert into rhpool.queue_journal (xact, job_table, priority, fifo_at, id_byte, delta, first)
      values (me, new.job_table, new.priority, new.fifo_at, get_byte(uuid_send(new.job_id), 0), 1, false);
    end if;
  end if;
  return null;
end
$$;

-- Deferred to the commit (a constraint trigger on the transaction's first
-- journal row): the transaction's journal rows, summed per key, into
-- rhpool.queue_counts. Runs as the owner: a client's transaction commits here.
-- enable_seqscan off: the journal is mostly dead rows of folded transactions
-- until vacuum, and looks empty to the planner; this transaction's rows are
-- found by its index.
create or replace function rhpool.fold_queue_journal()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
as $$
declare
  -- Only READ COMMITTED may take a row another transaction changed after
  -- this one began; other levels write overflow rows only.
  shared_rows boolean := current_setting('transaction_isolation') = 'read committed';
  zeroed rhpool.queue_counts[];
begin
  with moves as (
    delete from rhpool.queue_journal j where j.xact = new.xact
    returning j.job_table, j.priority, j.fifo_at, j.id_byte, j.delta
  ), sums as (
    select k.level, m.priority, k.bucket, k.id_byte, k.job_table, sum(m.delta)::bigint as queued
    from moves m
    cross join lateral (select rhpool.queue_instant(m.fifo_at) as instant) i
    cross join lateral (values (3::smallint, 0::bigint, 0::smallint, m.job_table),
                               (2::smallint, i.instant >> 28, 0::smallint, ''),
                               (1::smallint, i.instant >> 20, 0::smallint, ''),
                               (0::smallint, i.instant, m.id_byte, '')) k(level, bucket, id_byte, job_table)
    group by k.level, m.priority, k.bucket, k.id_byte, k.job_table
    having sum(m.delta) <> 0
    -- Key order: rows are taken (the pick below runs row by row, as the
    -- insert asks for them) and inserted in this order, so concurrent folds
    -- never wait for one another in a circle.
    order by k.level, m.priority, k.bucket, k.id_byte, k.job_table
  ), changed as (
    insert into rhpool.queue_counts as c (level, priority, bucket, id_byte, job_table, slot, queued)
    select s.level, s.priority, s.bucket, s.id_byte, s.job_table,
           case
             when not shared_rows then nextval('rhpool.queue_count_slots')
             else coalesce(
               -- a row of the key that no other transaction holds right now,
               (select c1.slot from rhpool.queue_counts c1
                where c1.level = s.level and c1.priority = s.priority and c1.bucket = s.bucket
                  and c1.id_byte = s.id_byte and c1.job_table = s.job_table
                order by c1.slot
                limit 1
                for update skip locked),
               -- else a new overflow row, or the main row when the key has none yet
               case when exists (
                 select 1 from rhpool.queue_counts c2
                 where c2.level = s.level and c2.priority = s.priority and c2.bucket = s.bucket
                   and c2.id_byte = s.id_byte and c2.job_table = s.job_table)
               then nextval('rhpool.queue_count_slots') else 0 end)
           end,
           s.queued
    from sums s
    on conflict on constraint queue_counts_pkey do update set queued = c.queued + excluded.queued
    returning c as counted
  )
  select array_agg(z.counted) filter (where (z.counted).queued = 0) into zeroed from changed z;

  -- A key counted down to zero needs no row (this transaction holds it).
  if zeroed is not null then
    delete from rhpool.queue_counts c
    using unnest(zeroed) z
    where c.level = z.level and c.priority = z.priority and c.bucket = z.bucket and c.id_byte = z.id_byte
      and c.job_table = z.job_table and c.slot = z.slot and c.queued = 0;
  end if;
  return null;
end
$$;

-- TRUNCATE rhpool.runs: nothing is queued any more. (TRUNCATE waits for every
-- transaction that wrote runs, so no fold of theirs is still to come.)
create or replace function rhpool.forget_queue_counts()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  delete from rhpool.queue_counts;
  delete from rhpool.queue_journal;
  return null;
end
$$;

-- The counts again from rhpool.runs, under a lock that keeps runs from
-- moving meanwhile (reads go on). For a database whose triggers were off
-- (session_replication_role = replica, a restore without triggers); the
-- function layer calls it once, when it first installs the triggers. Returns
-- how many runs are queued.
create or replace function rhpool.recount_queue()
returns bigint
language plpgsql
volatile
as $$
declare
  queued_runs bigint;
begin
  lock table rhpool.runs in share row exclusive mode;
  delete from rhpool.queue_counts;
  delete from rhpool.queue_journal;
  with queued as (
    select r.job_table, r.priority, rhpool.queue_instant(r.fifo_at) as instant, rhpool.queue_id_byte(r.job_id) as id_byte
    from rhpool.runs r
    where r.status = 'queued'
  )
  insert into rhpool.queue_counts (level, priority, bucket, id_byte, job_table, slot, queued)
  select 3, q.priority, 0, 0, q.job_table, 0, count(*) from queued q group by q.job_table, q.priority
  union all
  select 2, q.priority, q.instant >> 28, 0, '', 0, count(*) from queued q group by q.priority, q.instant >> 28
  union all
  select 1, q.priority, q.instant >> 20, 0, '', 0, count(*) from queued q group by q.priority, q.instant >> 20
  union all
  select 0, q.priority, q.instant, q.id_byte, '', 0, count(*) from queued q group by q.priority, q.instant, q.id_byte;
  select coalesce(sum(c.queued), 0)::bigint into queued_runs from rhpool.queue_counts c where c.level = 3;
  return queued_runs;
end
$$;

-- Overflow rows (slot > 0: written while the key's row was held, or by a
-- transaction that is not READ COMMITTED) merged into the key's lowest row,
-- at most max_keys keys a call. Only rows no other transaction holds are
-- taken (SKIP LOCKED) and nothing is inserted, so this never waits. A fold
-- may wait for a row taken here until this transaction commits; so that this
-- transaction's own fold can never be what it waits for in turn, a
-- transaction that moved runs merges nothing (the next round will). Run by
-- every maintenance round. Returns how many rows were merged away.
create or replace function rhpool.merge_queue_counts(max_keys integer default 1000)
returns integer
language plpgsql
volatile
as $$
declare
  key record;
  merged integer := 0;
  taken rhpool.queue_counts[];
  keeper rhpool.queue_counts;
  total bigint;
begin
  if exists (select 1 from rhpool.queue_journal j
             where pg_current_xact_id_if_assigned() is not null and j.xact = pg_current_xact_id_if_assigned()) then
    return 0;
  end if;
  for key in
    select distinct o.level, o.priority, o.bucket, o.id_byte, o.job_table
    from rhpool.queue_counts o
    where o.slot <> 0
    order by o.level, o.priority, o.bucket, o.id_byte, o.job_table
    limit max_keys
  loop
    select array_agg(l.counted order by (l.counted).slot) into taken
    from (
      select c as counted from rhpool.queue_counts c
      where c.level = key.level and c.priority = key.priority and c.bucket = key.bucket
        and c.id_byte = key.id_byte and c.job_table = key.job_table
      order by c.slot
      for update of c skip locked
    ) l;
    continue when coalesce(cardinality(taken), 0) < 2 and coalesce(taken[1].queued, 1) <> 0;
    keeper := taken[1];
    select sum(t.queued)::bigint into total from unnest(taken) t;
    delete from rhpool.queue_counts c
    using unnest(taken) t
    where c.level = t.level and c.priority = t.priority and c.bucket = t.bucket and c.id_byte = t.id_byte
      and c.job_table = t.job_table and c.slot = t.slot
      and (t.slot <> keeper.slot or total = 0);
    if total <> 0 then
      update rhpool.queue_counts c set queued = total
       where c.level = keeper.level and c.priority = keeper.priority and c.bucket = keeper.bucket
         and c.id_byte = keeper.id_byte and c.job_table = keeper.job_table and c.slot = keeper.slot;
    end if;
    merged := merged + cardinality(taken) - case when total <> 0 then 1 else 0 end;
  end loop;
  return merged;
end
$$;

-- The queued runs counted per job table and priority, this transaction's own
-- moves not yet folded included (what count(*) of the queue would say here).
-- A transaction that wrote nothing has no journal rows to look for (the
-- second branch is not even run). Inlined into the query that calls it.
create or replace function rhpool.queued_by_table()
returns table (job_table text, priority integer, queued bigint)
language sql
stable
as $$
  select k.job_table, k.priority, sum(k.queued)::bigint
  from (
    select c.job_table, c.priority, c.queued from rhpool.queue_counts c where c.level = 3
    union all
    select j.job_table, j.priority, j.delta::bigint from rhpool.queue_journal j
    where pg_current_xact_id_if_assigned() is not null and j.xact = pg_current_xact_id_if_assigned()
  ) k
  group by k.job_table, k.priority
  having sum(k.queued) <> 0
$$;

-- First install (a database migrated to 000016 while the release before ran):
-- runs may have moved between the migration's count and now, so count again,
-- under the lock, in the transaction that installs the triggers.
do $first_install$
begin
  if not exists (select 1 from pg_catalog.pg_trigger t where t.tgrelid = 'rhpool.runs'::regclass and t.tgname = 'runs_queue_insert') then
    perform rhpool.recount_queue();
  end if;
end
$first_install$;

create or replace trigger runs_queue_insert
  after insert on rhpool.runs
  for each row when (new.status = 'queued')
  execute function rhpool.journal_queue_move();

create or replace trigger runs_queue_update
  after update on rhpool.runs
  for each row when ((old.status = 'queued' or new.status = 'queued')
                     and (old.status, old.priority, old.fifo_at, old.job_id, old.job_table)
                         is distinct from (new.status, new.priority, new.fifo_at, new.job_id, new.job_table))
  execute function rhpool.journal_queue_move();

create or replace trigger runs_queue_delete
  after delete on rhpool.runs
  for each row when (old.status = 'queued')
  execute function rhpool.journal_queue_move();

create or replace trigger runs_queue_truncate
  after truncate on rhpool.runs
  for each statement execute function rhpool.forget_queue_counts();

-- A constraint trigger cannot be replaced in place.
drop trigger if exists queue_journal_fold on rhpool.queue_journal;
create constraint trigger queue_journal_fold
  after insert on rhpool.queue_journal
  deferrable initially deferred
  for each row when (new.first)
  execute function rhpool.fold_queue_journal();
