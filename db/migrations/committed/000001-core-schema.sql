--! Previous: -
--! Hash: sha1:d769181fb2e867e6f7bd6fe7f6bdaced2e7e5ea2

-- rhpool core schema.
--
-- Works on an empty database and on one that already holds the four job tables
-- in the first version's shape (no api_account, no constraints, statuses
-- pending/queued/starting/running/completed/failed/cancelled): the first
-- version's tables are created only when missing, then every rhpool column is
-- added with IF NOT EXISTS, so both paths converge on the same schema.
-- Functions and triggers live in db/functions and are (re)applied after the
-- migrations, so they never appear here.

create extension if not exists pgcrypto;
create schema if not exists rhpool;

-- The first version's tables, exactly as the product created them.
create table if not exists public.upscaler_jobs (
  id uuid primary key default gen_random_uuid(),
  session_id text,
  user_id uuid,
  task_id text,
  status text default 'pending',
  input_file_name text,
  input_url text,
  output_url text,
  error_message text,
  detail_denoise numeric default 0.15,
  prompt text,
  resolution integer default 4096,
  version text default 'pro',
  category text,
  framing_mode text,
  position integer,
  created_at timestamptz default now(),
  started_at timestamptz,
  completed_at timestamptz,
  rh_cost numeric,
  user_credit_cost numeric,
  waited_in_queue boolean default false,
  queue_wait_seconds integer,
  job_payload jsonb
);

create table if not exists public.pose_changer_jobs (
  id uuid primary key default gen_random_uuid(),
  session_id text,
  user_id uuid,
  task_id text,
  status text default 'pending',
  person_file_name text,
  reference_file_name text,
  person_image_url text,
  reference_image_url text,
  output_url text,
  error_message text,
  position integer,
  created_at timestamptz default now(),
  started_at timestamptz,
  completed_at timestamptz,
  rh_cost numeric,
  user_credit_cost numeric,
  waited_in_queue boolean default false,
  queue_wait_seconds integer,
  job_payload jsonb
);

create table if not exists public.veste_ai_jobs (
  id uuid primary key default gen_random_uuid(),
  session_id text,
  user_id uuid,
  task_id text,
  status text default 'pending',
  person_file_name text,
  clothing_file_name text,
  person_image_url text,
  clothing_image_url text,
  output_url text,
  error_message text,
  position integer,
  created_at timestamptz default now(),
  started_at timestamptz,
  completed_at timestamptz,
  rh_cost numeric,
  user_credit_cost numeric,
  waited_in_queue boolean default false,
  queue_wait_seconds integer,
  job_payload jsonb
);

create table if not exists public.video_upscaler_jobs (
  id uuid primary key default gen_random_uuid(),
  session_id text,
  user_id uuid,
  task_id text,
  status text default 'pending',
  input_file_name text,
  video_url text,
  video_width integer,
  video_height integer,
  video_duration_seconds numeric,
  output_url text,
  error_message text,
  position integer,
  created_at timestamptz default now(),
  started_at timestamptz,
  completed_at timestamptz,
  rh_cost numeric,
  user_credit_cost numeric,
  waited_in_queue boolean default false,
  queue_wait_seconds integer,
  job_payload jsonb
);

-- Accounts: one row per RunningHub account. The key itself never reaches the
-- database; only a short fingerprint so an operator can tell keys apart.
create table rhpool.accounts (
  name text primary key
    constraint accounts_name_format check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  position integer not null,
  slots integer not null default 3
    constraint accounts_slots_between_0_and_10000 check (slots between 0 and 10000),
  enabled boolean not null default true,
  disabled_reason text,
  cooldown_until timestamptz,
  cooldown_streak integer not null default 0,
  cooldown_reason text,
  key_fingerprint text
    constraint accounts_key_fingerprint_is_short check (length(key_fingerprint) <= 24),
  remain_money numeric,
  remain_coins numeric,
  reported_concurrency integer,
  health_checked_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Tools are data: which job table runs which RunningHub app, how its columns
-- become nodeInfoList entries, and how long a task may take.
create table rhpool.tools (
  job_table text primary key
    constraint tools_job_table_format check (job_table ~ '^[a-z_][a-z0-9_]*$'),
  tool text not null unique,
  -- {"column": "version", "apps": {"pro": "…"}, "default": "pro"} or {"apps": {"default": "…"}}
  app jsonb not null,
  -- [{"nodeId": "26", "fieldName": "image", "file": ["input_url", "input_file_name"]},
  --  {"nodeId": "25", "fieldName": "value", "column": "detail_denoise"},
  --  {"nodeId": "128", "fieldName": "text", "column": "prompt", "optional": true}]
  node_map jsonb not null,
  callback_deadline interval not null default interval '10 minutes',
  hard_deadline interval not null default interval '30 minutes',
  instance_type text
);

insert into rhpool.tools (job_table, tool, app, node_map, callback_deadline, hard_deadline) values
  ('upscaler_jobs', 'upscaler',
   '{"column": "version", "default": "pro", "apps": {"pro": "2015865378030755841", "standard": "2017030861371219969", "longe": "2017343414227963905"}}',
   '[{"nodeId": "26", "fieldName": "image", "file": ["input_url", "input_file_name"]},
     {"nodeId": "25", "fieldName": "value", "column": "detail_denoise"},
     {"nodeId": "128", "fieldName": "text", "column": "prompt", "optional": true}]',
   interval '10 minutes', interval '30 minutes'),
  ('pose_changer_jobs', 'pose_changer',
   '{"apps": {"default": "2018451429635133442"}}',
   '[{"nodeId": "27", "fieldName": "image", "file": ["person_image_url", "person_file_name"]},
     {"nodeId": "60", "fieldName": "image", "file": ["reference_image_url", "reference_file_name"]}]',
   interval '10 minutes', interval '30 minutes'),
  ('veste_ai_jobs', 'veste_ai',
   '{"apps": {"default": "2018755100210106369"}}',
   '[{"nodeId": "41", "fieldName": "image", "file": ["person_image_url", "person_file_name"]},
     {"nodeId": "43", "fieldName": "image", "file": ["clothing_image_url", "clothing_file_name"]}]',
   interval '10 minutes', interval '30 minutes'),
  ('video_upscaler_jobs', 'video_upscaler',
   '{"apps": {"default": "2018810750139109378"}}',
   '[{"nodeId": "3", "fieldName": "video", "file": ["video_url", "input_file_name"]}]',
   interval '40 minutes', interval '90 minutes');

-- Scheduler settings an operator may change at run time.
create table rhpool.settings (
  key text primary key,
  value text not null
);
insert into rhpool.settings (key, value) values
  ('strategy', 'fill-first'),
  ('lease_seconds', '60'),
  ('cooldown_base_seconds', '5'),
  ('cooldown_max_seconds', '300');

-- Every rhpool column on every job table. The same block serves fresh and
-- upgraded databases.
do $migrate$
declare
  job_table text;
begin
  foreach job_table in array array['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] loop
    execute format($sql$
      alter table public.%1$I
        add column if not exists api_account text,
        add column if not exists priority integer not null default 0,
        add column if not exists attempts integer not null default 0,
        add column if not exists max_attempts integer not null default 5,
        add column if not exists not_before timestamptz,
        add column if not exists claimed_at timestamptz,
        add column if not exists submitted_at timestamptz,
        add column if not exists error_code text,
        add column if not exists outputs jsonb,
        add column if not exists rh_usage jsonb,
        add column if not exists cancel_requested_at timestamptz,
        add column if not exists updated_at timestamptz not null default now()
    $sql$, job_table);

    -- Existing rows ran on the only account there was (the plan's rule).
    execute format('update public.%I set api_account = %L where api_account is null', job_table, 'primary');

    -- The first version's in-flight states, mapped onto rhpool's:
    --  * starting/running with a task id: RunningHub has it, so it is running;
    --  * starting/running without one: RunningHub may or may not have it. Never
    --    resubmit (that could pay twice): the outcome is unknown and is
    --    reconciled by the callback or the deadline.
    execute format($sql$
      update public.%1$I set
        status = case when task_id is not null and task_id <> '' then 'running' else 'outcome_unknown' end,
        submitted_at = coalesce(started_at, created_at, now())
      where status in ('starting', 'running')
    $sql$, job_table);
    execute format($sql$
      update public.%1$I set status = 'failed', error_code = 'UNKNOWN_LEGACY_STATUS',
        error_message = coalesce(error_message, 'status ' || coalesce(status, 'NULL') || ' was not understood by the upgrade')
      where status is null or status not in ('pending', 'queued', 'running', 'outcome_unknown', 'completed', 'failed', 'cancelled')
    $sql$, job_table);

    execute format('update public.%I set created_at = now() where created_at is null', job_table);
    execute format('alter table public.%I alter column created_at set not null, alter column created_at set default clock_timestamp()', job_table);
    execute format('alter table public.%I alter column status set not null, alter column status set default %L', job_table, 'queued');

    -- Constraints name the field they guard, so a refused row says what is wrong.
    execute format($sql$
      alter table public.%1$I
        add constraint %2$I check (status in ('pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running', 'completed', 'failed', 'cancelled')),
        add constraint %3$I check (priority between -1000 and 1000),
        add constraint %4$I check (attempts >= 0),
        add constraint %5$I check (max_attempts between 1 and 100),
        add constraint %6$I check (status not in ('claimed', 'submitting', 'outcome_unknown', 'running') or api_account is not null)
    $sql$, job_table,
      job_table || '_status_is_known',
      job_table || '_priority_between_-1000_and_1000',
      job_table || '_attempts_not_negative',
      job_table || '_max_attempts_between_1_and_100',
      job_table || '_api_account_required_in_flight');

    execute format('create unique index if not exists %I on public.%I (task_id) where task_id is not null', job_table || '_task_id_key', job_table);
    execute format('create index if not exists %I on public.%I (user_id, created_at desc)', job_table || '_user_recent', job_table);
    execute format('create index if not exists %I on public.%I (status) where status in (%L, %L, %L, %L, %L)',
      job_table || '_unfinished', job_table, 'pending', 'claimed', 'submitting', 'outcome_unknown', 'running');
  end loop;
end
$migrate$;

-- Tool inputs are checked only once a job is ready (queued): a pending row may
-- still be waiting for its uploads.
alter table public.upscaler_jobs
  add constraint upscaler_jobs_input_url_or_input_file_name_required
    check (status = 'pending' or status = 'cancelled' or coalesce(input_url, input_file_name) is not null) not valid,
  add constraint upscaler_jobs_detail_denoise_between_0_and_1 check (detail_denoise between 0 and 1) not valid,
  add constraint upscaler_jobs_resolution_between_64_and_16384 check (resolution between 64 and 16384) not valid,
  add constraint upscaler_jobs_version_is_pro_standard_or_longe check (version in ('pro', 'standard', 'longe')) not valid;
alter table public.pose_changer_jobs
  add constraint pose_changer_jobs_person_image_url_or_person_file_name_required
    check (status = 'pending' or status = 'cancelled' or coalesce(person_image_url, person_file_name) is not null) not valid,
  add constraint pose_changer_jobs_reference_image_url_or_file_name_required
    check (status = 'pending' or status = 'cancelled' or coalesce(reference_image_url, reference_file_name) is not null) not valid;
alter table public.veste_ai_jobs
  add constraint veste_ai_jobs_person_image_url_or_person_file_name_required
    check (status = 'pending' or status = 'cancelled' or coalesce(person_image_url, person_file_name) is not null) not valid,
  add constraint veste_ai_jobs_clothing_image_url_or_clothing_file_name_required
    check (status = 'pending' or status = 'cancelled' or coalesce(clothing_image_url, clothing_file_name) is not null) not valid;
alter table public.video_upscaler_jobs
  add constraint video_upscaler_jobs_video_url_or_input_file_name_required
    check (status = 'pending' or status = 'cancelled' or coalesce(video_url, input_file_name) is not null) not valid,
  add constraint video_upscaler_jobs_video_dimensions_positive
    check ((video_width is null or video_width > 0) and (video_height is null or video_height > 0)) not valid,
  add constraint video_upscaler_jobs_video_duration_seconds_positive
    check (video_duration_seconds is null or video_duration_seconds > 0) not valid;

-- The global queue: one row per claimable job across all job tables, ordered
-- by one index. Kept in step with the job tables by triggers in the same
-- transaction, so it is never stale.
create table rhpool.queue (
  job_table text not null references rhpool.tools (job_table),
  job_id uuid not null,
  priority integer not null,
  created_at timestamptz not null,
  not_before timestamptz,
  primary key (job_table, job_id)
);
create index queue_fifo on rhpool.queue (priority desc, created_at, job_id);

-- Slots: one row per job in flight (claimed, submitting, outcome unknown or
-- running). The number of rows for an account is its load; inserts are capped
-- at the account's slots under the admission lock.
create table rhpool.slots (
  job_table text not null references rhpool.tools (job_table),
  job_id uuid not null,
  account text not null references rhpool.accounts (name) on update cascade,
  claimed_at timestamptz not null default now(),
  -- While a dispatcher holds the claim (before RunningHub answered): past this
  -- time the claim is recovered. Null once RunningHub has the task.
  lease_expires_at timestamptz,
  holder text,
  primary key (job_table, job_id)
);
create index slots_by_account on rhpool.slots (account);
create index slots_by_lease on rhpool.slots (lease_expires_at) where lease_expires_at is not null;

-- One terminal event per job, written in the transaction that finished it:
-- what the product hangs refunds and notifications on.
create table rhpool.job_events (
  id bigint generated always as identity primary key,
  job_table text not null,
  job_id uuid not null,
  status text not null check (status in ('completed', 'failed', 'cancelled')),
  api_account text,
  user_id text,
  task_id text,
  error_code text,
  rh_cost numeric,
  occurred_at timestamptz not null default now(),
  processed_at timestamptz,
  constraint job_events_one_per_job unique (job_table, job_id)
);
create index job_events_unprocessed on rhpool.job_events (id) where processed_at is null;

-- Existing in-flight rows of an upgraded database hold slots on `primary`, so
-- limits count them from the first claim on. The account has no key until the
-- dispatcher syncs its configuration, so it starts disabled.
insert into rhpool.accounts (name, position, slots, enabled, disabled_reason)
select 'primary', 1, 3, false, 'no key configured yet'
where exists (select 1 from public.upscaler_jobs where status in ('running', 'outcome_unknown'))
   or exists (select 1 from public.pose_changer_jobs where status in ('running', 'outcome_unknown'))
   or exists (select 1 from public.veste_ai_jobs where status in ('running', 'outcome_unknown'))
   or exists (select 1 from public.video_upscaler_jobs where status in ('running', 'outcome_unknown'))
   or exists (select 1 from public.upscaler_jobs where api_account = 'primary')
   or exists (select 1 from public.pose_changer_jobs where api_account = 'primary')
   or exists (select 1 from public.veste_ai_jobs where api_account = 'primary')
   or exists (select 1 from public.video_upscaler_jobs where api_account = 'primary');

insert into rhpool.slots (job_table, job_id, account, claimed_at)
select 'upscaler_jobs', id, 'primary', submitted_at from public.upscaler_jobs where status in ('running', 'outcome_unknown')
union all
select 'pose_changer_jobs', id, 'primary', submitted_at from public.pose_changer_jobs where status in ('running', 'outcome_unknown')
union all
select 'veste_ai_jobs', id, 'primary', submitted_at from public.veste_ai_jobs where status in ('running', 'outcome_unknown')
union all
select 'video_upscaler_jobs', id, 'primary', submitted_at from public.video_upscaler_jobs where status in ('running', 'outcome_unknown');

insert into rhpool.queue (job_table, job_id, priority, created_at, not_before)
select 'upscaler_jobs', id, priority, created_at, not_before from public.upscaler_jobs where status = 'queued'
union all
select 'pose_changer_jobs', id, priority, created_at, not_before from public.pose_changer_jobs where status = 'queued'
union all
select 'veste_ai_jobs', id, priority, created_at, not_before from public.veste_ai_jobs where status = 'queued'
union all
select 'video_upscaler_jobs', id, priority, created_at, not_before from public.video_upscaler_jobs where status = 'queued';

do $fk$
declare
  job_table text;
begin
  foreach job_table in array array['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] loop
    execute format('alter table public.%I add constraint %I foreign key (api_account) references rhpool.accounts (name) on update cascade',
      job_table, job_table || '_api_account_is_a_known_account');
  end loop;
end
$fk$;
