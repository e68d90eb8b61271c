--! Previous: sha1:3b0331f2690dae07b0de816e2c89501c49a2ea37
--! Hash: sha1:e676f1cb46c9d490ec8bd3165ea561bf5038aeae

-- Newest-first listings over every job table (the dashboard's recent jobs,
-- `rhpool jobs`) read each table's newest rows from an index instead of
-- sorting the whole table.
do $index$
declare
  job_table text;
begin
  foreach job_table in array array['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] loop
    execute format('create index if not exists %I on public.%I (created_at desc)', job_table || '_created_at', job_table);
  end loop;
end
$index$;
