-- Bench-only helpers, created in the benchmark's throwaway database (never in
-- rhpool's schema). They keep the queue at a fixed depth between claims.
create schema if not exists bench;

-- Every job ever added by the bench gets the next queue position. Position p
-- decides its table (p % 4), its priority and its created_at, so the queue is
-- a known, reproducible mix and a refill lands behind the existing jobs of its
-- priority, like a job a client inserts now.
create sequence if not exists bench.position;

-- A spread of priorities (-2..2) that every run reproduces.
create or replace function bench.priority_of(p bigint)
returns integer
language sql
immutable
as $$ select ((p * 7) % 5)::integer - 2 $$;

create or replace function bench.created_at_of(p bigint)
returns timestamptz
language sql
immutable
as $$ select timestamptz '2025-01-01 00:00:00+00' + p * interval '1 millisecond' $$;

-- What the jobs' inputs look like. 'urls' (the default) gives every job an
-- https://files.example/… input URL, which is fine for claim-only benchmarks
-- (nothing is ever submitted); a benchmark that runs rhpool's dispatcher sets
-- 'files' first, so the jobs carry RunningHub file names instead and the
-- dispatcher never tries to download anything (no host but 127.0.0.1).
create table if not exists bench.settings (
  key text primary key,
  value text not null
);
insert into bench.settings (key, value) values ('inputs', 'urls') on conflict (key) do nothing;

create or replace function bench.file_inputs()
returns boolean
language sql
stable
as $$ select coalesce((select value = 'files' from bench.settings where key = 'inputs'), false) $$;

-- Adds how_many queued jobs spread over the four job tables in one set-based
-- statement (rhpool's job triggers fire per row, exactly as for a client's
-- INSERT, so each job's run in rhpool.runs is created by rhpool itself; its
-- place in the queue, fifo_at, is the row's created_at). Returns how many rows
-- were inserted.
create or replace function bench.add_queued_jobs(how_many bigint)
returns bigint
language sql
volatile
as $$
  with files as materialized (
    select bench.file_inputs() as use_files
  ),
  positions as materialized (
    select nextval('bench.position') as p from generate_series(1, how_many)
  ),
  upscaler as (
    insert into public.upscaler_jobs (status, priority, created_at, input_url, input_file_name)
    select 'queued', bench.priority_of(p), bench.created_at_of(p),
           case when not files.use_files then 'https://files.example/in.png' end, case when files.use_files then 'in.png' end
    from positions, files where p % 4 = 0
    returning 1
  ),
  pose_changer as (
    insert into public.pose_changer_jobs (status, priority, created_at, person_image_url, reference_image_url, person_file_name, reference_file_name)
    select 'queued', bench.priority_of(p), bench.created_at_of(p),
           case when not files.use_files then 'https://files.example/person.png' end, case when not files.use_files then 'https://files.example/pose.png' end,
           case when files.use_files then 'person.png' end, case when files.use_files then 'pose.png' end
    from positions, files where p % 4 = 1
    returning 1
  ),
  veste_ai as (
    insert into public.veste_ai_jobs (status, priority, created_at, person_image_url, clothing_image_url, person_file_name, clothing_file_name)
    select 'queued', bench.priority_of(p), bench.created_at_of(p),
           case when not files.use_files then 'https://files.example/person.png' end, case when not files.use_files then 'https://files.example/shirt.png' end,
           case when files.use_files then 'person.png' end, case when files.use_files then 'shirt.png' end
    from positions, files where p % 4 = 2
    returning 1
  ),
  video_upscaler as (
    insert into public.video_upscaler_jobs (status, priority, created_at, video_url, input_file_name)
    select 'queued', bench.priority_of(p), bench.created_at_of(p),
           case when not files.use_files then 'https://files.example/in.mp4' end, case when files.use_files then 'in.mp4' end
    from positions, files where p % 4 = 3
    returning 1
  )
  select (select count(*) from upscaler) + (select count(*) from pose_changer)
       + (select count(*) from veste_ai) + (select count(*) from video_upscaler)
$$;

-- Frees the slots a claim filled (cancelling a claimed job ends its run, and
-- with it the slot, in the same transaction, through rhpool's own trigger:
-- no claim token needed) and puts as many new
-- jobs in the queue, so the next claim meets the same depth. Returns how many
-- jobs were cancelled.
create or replace function bench.cancel_and_refill(job_tables text[], job_ids uuid[])
returns integer
language plpgsql
volatile
as $$
declare
  cancelled integer;
begin
  select count(*) filter (where rhpool.cancel_job(c.job_table, c.job_id, 'bench') = 'cancelled')
    into cancelled
  from unnest(job_tables, job_ids) as c(job_table, job_id);
  perform bench.add_queued_jobs(cardinality(job_ids));
  return cancelled;
end
$$;
