--! Previous: sha1:b63676fbaeecd37a33fabc6f84e8edf9bd7e545b
--! Hash: sha1:4b4355b9903bb9bb9bb4830ab627078203fe2b5f

-- numeric accepts 'NaN' and 'Infinity', and NaN > 0 is true in PostgreSQL:
-- a duration must be a real number of seconds (at most a day).
alter table public.video_upscaler_jobs drop constraint video_upscaler_jobs_video_duration_seconds_positive;
alter table public.video_upscaler_jobs add constraint video_upscaler_jobs_video_duration_seconds_positive
  check (video_duration_seconds is null or (video_duration_seconds > 0 and video_duration_seconds <= 86400)) not valid;
