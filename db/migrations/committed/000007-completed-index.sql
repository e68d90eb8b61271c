--! Previous: sha1:4b4355b9903bb9bb9bb4830ab627078203fe2b5f
--! Hash: sha1:5614d8f9d833c1f1b6ce1d849675fc29e454337b

-- The status page sums the last day's cost per account every second: an index
-- on completed jobs by completion time keeps that to the day's rows, however
-- long the history grows.
do $index$
declare
  job_table text;
begin
  foreach job_table in array array['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] loop
    execute format('create index if not exists %I on public.%I (completed_at) where status = %L',
      job_table || '_completed_recently', job_table, 'completed');
  end loop;
end
$index$;
