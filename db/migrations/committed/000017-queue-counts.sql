--! Previous: sha1:d2d51ee4f0adda3865479b7d8df6e2dc43e12ae8
--! Hash: sha1:402d628e54c1b07126dea51100b6b1344a1344c4

-- Status that never reads the queue (db/functions/025-queue-counts.sql).
--
-- Until now every status read counted rhpool.runs: pool_status(), /metrics
-- and the dashboard counted the whole queue, and a job's position counted
-- every job ahead of it (1.3 s, 0.5 s, 5.7 s and 0.17 s at 1M queued). The
-- counts are now kept beside the queue:
--
--   rhpool.queue_journal  one row per move into (+1) or out of (-1) the queue,
--                         appended by a trigger on rhpool.runs in the
--                         transaction that moves the run; never updated;
--   rhpool.queue_counts   the journal's rows summed per key, folded in (and
--                         deleted from the journal) by one transaction at a
--                         time, every second or so (fold_queue_journal):
--                           level 3  per job table and priority (status);
--                           level 2  per priority and 2^28 µs (~4.5 min) of fifo_at;
--                           level 1  per priority and 2^20 µs (~1 s) of fifo_at;
--                           level 0  per priority, exact fifo_at (µs since the
--                                    epoch) and first byte of the job id.
--
-- What is queued = the counts + the journal rows a reader sees, read in one
-- snapshot: a fold moves rows from one to the other in one transaction.

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
  queued bigint not null,
  constraint queue_counts_pkey primary key (level, priority, bucket, id_byte, job_table),
  constraint queue_counts_key_shape check (
    (level = 3 and bucket = 0 and id_byte = 0 and job_table <> '')
    or (level in (1, 2) and id_byte = 0 and job_table = '')
    or (level = 0 and id_byte between 0 and 255 and job_table = ''))
) with (fillfactor = 70);
comment on table rhpool.queue_counts is
  'Queued runs counted per key: rhpool.queue_journal folded in by fold_queue_journal (db/functions/025-queue-counts.sql). What is queued is these plus the journal, read together.';

-- Appended to by every move, emptied by every fold: vacuumed by row count,
-- not by a share of a table that is always small.
create table rhpool.queue_journal (
  job_table text not null,
  priority integer not null,
  fifo_at timestamptz not null,
  id_byte smallint not null,
  delta smallint not null
    constraint queue_journal_delta_is_one_run check (delta in (-1, 1))
) with (autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_insert_threshold = 2000, autovacuum_vacuum_insert_scale_factor = 0);
comment on table rhpool.queue_journal is
  'Moves into (+1) and out of (-1) the queue not yet folded into rhpool.queue_counts (db/functions/025-queue-counts.sql).';

-- The oldest queued job of each tool, read by one index probe per tool.
create index runs_queue_by_table on rhpool.runs (job_table, fifo_at) where status = 'queued';

-- The tables start empty: the function layer, applied after this migration,
-- installs the counting triggers and counts what is queued (recount_queue,
-- under a lock) in the same transaction, so runs the release before moves in
-- between are counted too. Nothing reads the counts before then.
