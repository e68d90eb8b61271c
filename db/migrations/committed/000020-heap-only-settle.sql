--! Previous: sha1:ecc8e5c16019c25f69ade1a7500cde27245e90be
--! Hash: sha1:128d559ce275594a04d417dbba18a62099bf0d4f

-- The end of a job is a heap-only (HOT) update too (issue 12, bench/profile.ts).
--
-- 000018 left one index naming a column the end of a job writes:
-- <table>_finished_at (completed_at), for the dashboard's last-day cost. The
-- dashboard now reads rhpool.spend_by_hour (000019), and nothing on a poll
-- path reads completed_at: only rhpool.account_costs(since), an operator's
-- report, which scans the job tables instead. With the index gone, no index
-- of a job table names a column written after the insert except task_id
-- (record_submission, once), so the claim, the submitting step and the end of
-- the job each rewrite the row in place when its page has room (fillfactor
-- 80, 000018), without a new entry in the table's four other indexes.
do $hot$
declare
  job_table text;
begin
  foreach job_table in array array['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] loop
    execute format('drop index if exists public.%I', job_table || '_finished_at');
  end loop;
end
$hot$;
