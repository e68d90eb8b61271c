--! Previous: sha1:402d628e54c1b07126dea51100b6b1344a1344c4
--! Hash: sha1:7ab75e5b2ab519b7d8c10b01cac93f240b4c8e0a

-- Cheaper transitions on the product's job rows (issue 12, bench/profile.ts).
--
-- Each job's row is written four times on its way (claimed, submitting,
-- running, finished). A write that changes an indexed column (or one in an
-- index's WHERE clause) puts a new entry in every index of the table; one
-- that changes none can be a heap-only (HOT) update, which touches no index.
-- Two indexes named status in their WHERE clause, so every transition paid
-- for all of them:
--
--  * <table>_unfinished (status) where status is unfinished: from the design
--    before rhpool.runs. Nothing reads it now: the jobs in flight are
--    rhpool.runs' (runs_in_flight), the queue is runs_queue's. Dropped.
--  * <table>_completed_recently (completed_at) where status = 'completed': the
--    dashboard's last-day cost. Now on completed_at alone (set once, when the
--    job finishes): the same range scan, filtered by status.
--
-- With them gone, the claim and the submitting step are HOT updates when the
-- page has room; the job tables keep a fifth of each new page free for them.
do $hot$
declare
  job_table text;
begin
  foreach job_table in array array['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] loop
    execute format('drop index if exists public.%I', job_table || '_unfinished');
    execute format('drop index if exists public.%I', job_table || '_completed_recently');
    execute format('create index if not exists %I on public.%I (completed_at) where completed_at is not null',
      job_table || '_finished_at', job_table);
    execute format('alter table public.%I set (fillfactor = 80)', job_table);
  end loop;
end
$hot$;
