-- The queue's counts, kept beside the queue, so that status, metrics, the
-- dashboard and a job's position never count the queue (tables:
-- db/migrations/committed/000017-queue-counts.sql).
--
-- Who writes what:
--  * Every move of a run into or out of the queue ('queued', keyed by
--    priority, fifo_at and job id) — a job inserted queued, pending → queued,
--    a claim, a requeue (release, retry, lease expiry), a cancellation, a
--    deleted job row, a hand-written change of priority or fifo_at — is a
--    write of rhpool.runs, so one trigger on rhpool.runs sees them all. Its
--    WHEN clause lets every other update of a run (leases, task ids, checks,
--    submission steps) through at no cost.
--  * The trigger appends one row to rhpool.queue_journal, and that is all a
--    move costs: no counter row is updated by the transaction that moves the
--    run, so movers never wait for one another on a hot row, and a bulk
--    INSERT of thousands of jobs appends thousands of rows instead of
--    updating one row thousands of times (every version of a row updated in
--    one transaction stays until it ends: 10k updates of one row take 1 s
--    here, 40k take 17 s).
--  * fold_queue_journal() moves the journal's committed rows into
--    rhpool.queue_counts, summed per key, in one transaction: the dispatcher
--    calls it every RHPOOL_QUEUE_FOLD_INTERVAL_MS (1 s), maintenance at every
--    round. One fold at a time (an advisory lock; a second caller returns at
--    once), so nothing else ever writes or waits for a counter row.
--
-- Why the answers are exact: queued = counts + journal, read by one statement
-- (one snapshot). A fold deletes the journal rows it sums and writes their sum
-- in the same transaction, so every snapshot sees each move exactly once:
-- still in the journal, or already in the counts. A transaction sees its own
-- moves (its journal rows) before it commits; a rollback, of the transaction
-- or of a savepoint, takes its journal rows with it. TRUNCATE of rhpool.runs
-- clears both. recount_queue() rebuilds them from rhpool.runs, for a database
-- whose triggers were off (or to prove the point: test/queue-counts.test.ts
-- compares the two).
--
-- What a read costs: the counts' rows it needs (an index range) plus the
-- journal, whole: the moves of the last fold interval (about 2 per job), so a
-- read grows with the job rate, never with the queue's depth.

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
begin
  if tg_op <> 'INSERT' and old.status = 'queued' then
    insert into rhpool.queue_journal (job_table, priority, fifo_at, id_byte, delta)
    values (old.job_table, old.priority, old.fifo_at, get_byte(uuid_send(old.job_id), 0), -1);
  end if;
  if tg_op <> 'DELETE' and new.status = 'queued' then
    insert into rhpool.queue_journal (job_table, priority, fifo_at, id_byte, delta)
    values (new.job_table, new.priority, new.fifo_at, get_byte(uuid_send(new.job_id), 0), 1);
  end if;
  return null;
end
$$;

-- The journal's rows this transaction sees (committed moves, and its own)
-- summed per key into rhpool.queue_counts and deleted, in one transaction.
-- Moves still uncommitted elsewhere stay for the next fold. A key counted down
-- to zero loses its row. Returns how many journal rows were folded, or 0 when
-- another fold holds the lock (this one would find nothing it left).
create or replace function rhpool.fold_queue_journal()
returns integer
language plpgsql
volatile
as $$
declare
  folded integer;
  zeroed rhpool.queue_counts[];
begin
  -- One fold at a time (rhpool's advisory locks are (7263541, n):
  -- 010-settings.sql has 1, maintenance 2; recount_queue and TRUNCATE wait for it).
  if not pg_try_advisory_xact_lock(7263541, 3) then
    return 0;
  end if;
  with moves as (
    delete from rhpool.queue_journal j
    returning j.job_table, j.priority, j.fifo_at, j.id_byte, j.delta
  ), keyed as (
    select k.level, m.priority, k.bucket, k.id_byte, k.job_table, m.delta
    from moves m
    cross join lateral (select rhpool.queue_instant(m.fifo_at) as instant) i
    cross join lateral (values (3::smallint, 0::bigint, 0::smallint, m.job_table),
                               (2::smallint, i.instant >> 28, 0::smallint, ''),
                               (1::smallint, i.instant >> 20, 0::smallint, ''),
                               (0::smallint, i.instant, m.id_byte, '')) k(level, bucket, id_byte, job_table)
  ), sums as (
    select x.level, x.priority, x.bucket, x.id_byte, x.job_table, sum(x.delta)::bigint as queued, count(*) as moves
    from keyed x
    group by x.level, x.priority, x.bucket, x.id_byte, x.job_table
  ), changed as (
    insert into rhpool.queue_counts as c (level, priority, bucket, id_byte, job_table, queued)
    select s.level, s.priority, s.bucket, s.id_byte, s.job_table, s.queued
    from sums s
    where s.queued <> 0
    on conflict on constraint queue_counts_pkey do update set queued = c.queued + excluded.queued
    returning c as counted
  )
  select (select coalesce(sum(s.moves), 0)::integer from sums s where s.level = 3),
         (select array_agg(z.counted) filter (where (z.counted).queued = 0) from changed z)
    into folded, zeroed;

  if zeroed is not null then
    delete from rhpool.queue_counts c
    using unnest(zeroed) z
    where c.level = z.level and c.priority = z.priority and c.bucket = z.bucket and c.id_byte = z.id_byte
      and c.job_table = z.job_table and c.queued = 0;
  end if;
  return folded;
end
$$;

-- TRUNCATE rhpool.runs: nothing is queued any more. (TRUNCATE waits for every
-- transaction that wrote runs; the lock waits for a fold under way.)
create or replace function rhpool.forget_queue_counts()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_advisory_xact_lock(7263541, 3);
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
  -- A fold under way would write counts this one does not see.
  perform pg_advisory_xact_lock(7263541, 3);
  delete from rhpool.queue_counts;
  delete from rhpool.queue_journal;
  with queued as (
    select r.job_table, r.priority, rhpool.queue_instant(r.fifo_at) as instant, rhpool.queue_id_byte(r.job_id) as id_byte
    from rhpool.runs r
    where r.status = 'queued'
  )
  insert into rhpool.queue_counts (level, priority, bucket, id_byte, job_table, queued)
  select 3, q.priority, 0, 0, q.job_table, count(*) from queued q group by q.job_table, q.priority
  union all
  select 2, q.priority, q.instant >> 28, 0, '', count(*) from queued q group by q.priority, q.instant >> 28
  union all
  select 1, q.priority, q.instant >> 20, 0, '', count(*) from queued q group by q.priority, q.instant >> 20
  union all
  select 0, q.priority, q.instant, q.id_byte, '', count(*) from queued q group by q.priority, q.instant, q.id_byte;
  select coalesce(sum(c.queued), 0)::bigint into queued_runs from rhpool.queue_counts c where c.level = 3;
  return queued_runs;
end
$$;

-- The queued runs counted per job table and priority: the counts and the
-- journal read together (what count(*) of the queue would say here, this
-- transaction's own moves included). Inlined into the query that calls it,
-- so both are read in that query's snapshot.
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
  ) k
  group by k.job_table, k.priority
  having sum(k.queued) <> 0
$$;

-- First install (a database migrated to 000017 while the release before ran):
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

