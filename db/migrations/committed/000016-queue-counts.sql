--! Previous: sha1:a199d15e19279bdb0b3eb1a86500b3ef93df6235
--! Hash: sha1:d265f70e3512954de83de60ab2922402037e015e

-- Status that never reads the queue (db/functions/025-queue-counts.sql).
--
-- Until now every status read counted rhpool.runs: pool_status(), /metrics
-- and the dashboard counted the whole queue, and a job's position counted
-- every job ahead of it (1.3 s, 0.5 s, 5.7 s and 0.17 s at 1M queued). The
-- counts are now kept in the transactions that change the queue:
--
--   rhpool.queue_journal  one row per move into or out of the queue, written
--                         by a trigger on rhpool.runs; folded into
--                         rhpool.queue_counts by the same transaction when it
--                         commits (a deferred trigger), so it only ever holds
--                         rows of transactions still in progress;
--   rhpool.queue_counts   how many runs are queued, per key:
--                           level 3  per job table and priority (status);
--                           level 2  per priority and 2^28 µs (~4.5 min) of fifo_at;
--                           level 1  per priority and 2^20 µs (~1 s) of fifo_at;
--                           level 0  per priority, exact fifo_at (µs since the
--                                    epoch) and first byte of the job id;
--                         a key's main row has slot 0; a transaction that finds
--                         it held by another adds an overflow row (slot > 0)
--                         instead of waiting, merged back by maintenance.
--
-- A queued job's position sums the counts of the keys before it, level by
-- level, and counts in rhpool.runs only the jobs of its own instant and id
-- byte; see rhpool.queue_ahead.

create table rhpool.queue_counts (
  level smallint not null
    constraint queue_counts_level_known check (level between 0 and 3),
  priority integer not null,
  -- level 3: 0; level 2: instant >> 28; level 1: instant >> 20; level 0: the instant
  -- (fifo_at in microseconds since 1970-01-01 UTC).
  bucket bigint not null,
  -- level 0: the first byte of the job id (0-255); else 0.
  id_byte smallint not null,
  -- level 3: the job table; else ''.
  job_table text not null,
  slot bigint not null,
  queued bigint not null,
  constraint queue_counts_pkey primary key (level, priority, bucket, id_byte, job_table, slot),
  constraint queue_counts_key_shape check (
    (level = 3 and bucket = 0 and id_byte = 0 and job_table <> '')
    or (level in (1, 2) and id_byte = 0 and job_table = '')
    or (level = 0 and id_byte between 0 and 255 and job_table = ''))
) with (fillfactor = 70);
comment on table rhpool.queue_counts is
  'Queued runs counted per key, kept by the transactions that move runs in and out of the queue (db/functions/025-queue-counts.sql). Status and queue positions read these instead of the queue.';

-- The overflow rows maintenance merges back into their key's main row.
create index queue_counts_overflow on rhpool.queue_counts (level, priority, bucket, id_byte, job_table) where slot <> 0;

create sequence rhpool.queue_count_slots as bigint;

create table rhpool.queue_journal (
  xact xid8 not null default pg_current_xact_id(),
  job_table text not null,
  priority integer not null,
  fifo_at timestamptz not null,
  id_byte smallint not null,
  delta smallint not null
    constraint queue_journal_delta_is_one_run check (delta in (-1, 1)),
  -- The transaction's first row (since its last fold): the one whose deferred
  -- trigger folds the transaction's rows.
  first boolean not null
);
comment on table rhpool.queue_journal is
  'Moves into (+1) and out of (-1) the queue not yet folded into rhpool.queue_counts: only rows of transactions still in progress (each folds its own before it commits).';
create index queue_journal_xact on rhpool.queue_journal (xact);
-- One first row per transaction (until it folds): how a move knows it is the first.
create unique index queue_journal_first on rhpool.queue_journal (xact) where first;

-- The oldest queued job of each tool, read by one index probe per tool.
create index runs_queue_by_table on rhpool.runs (job_table, fifo_at) where status = 'queued';

-- The counts of the runs queued now. (The function layer applied after this
-- migration installs the triggers, and counts again under a lock in the same
-- transaction, so runs moved between the two transactions are counted too.
-- The instant is computed as rhpool.queue_instant() does.)
lock table rhpool.runs in share mode;

with queued as (
  select r.job_table, r.priority,
         (extract(epoch from (r.fifo_at - timestamptz '1970-01-01 00:00:00+00')) * 1000000)::bigint as instant,
         get_byte(uuid_send(r.job_id), 0)::smallint as id_byte
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
