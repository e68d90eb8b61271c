// The first version's four job tables, exactly as the product created them
// (no api_account, no constraints, the old statuses): what an upgrade starts from.
export const firstVersionSchema = `
  create table upscaler_jobs (
    id uuid primary key default gen_random_uuid(), session_id text, user_id uuid, task_id text, status text default 'pending',
    input_file_name text, input_url text, output_url text, error_message text, detail_denoise numeric default 0.15, prompt text,
    resolution integer default 4096, version text default 'pro', category text, framing_mode text, position integer,
    created_at timestamptz default now(), started_at timestamptz, completed_at timestamptz, rh_cost numeric, user_credit_cost numeric,
    waited_in_queue boolean default false, queue_wait_seconds integer, job_payload jsonb);
  create table pose_changer_jobs (
    id uuid primary key default gen_random_uuid(), session_id text, user_id uuid, task_id text, status text default 'pending',
    person_file_name text, reference_file_name text, person_image_url text, reference_image_url text, output_url text, error_message text,
    position integer, created_at timestamptz default now(), started_at timestamptz, completed_at timestamptz, rh_cost numeric,
    user_credit_cost numeric, waited_in_queue boolean default false, queue_wait_seconds integer, job_payload jsonb);
  create table veste_ai_jobs (
    id uuid primary key default gen_random_uuid(), session_id text, user_id uuid, task_id text, status text default 'pending',
    person_file_name text, clothing_file_name text, person_image_url text, clothing_image_url text, output_url text, error_message text,
    position integer, created_at timestamptz default now(), started_at timestamptz, completed_at timestamptz, rh_cost numeric,
    user_credit_cost numeric, waited_in_queue boolean default false, queue_wait_seconds integer, job_payload jsonb);
  create table video_upscaler_jobs (
    id uuid primary key default gen_random_uuid(), session_id text, user_id uuid, task_id text, status text default 'pending',
    input_file_name text, video_url text, video_width integer, video_height integer, video_duration_seconds numeric,
    output_url text, error_message text, position integer, created_at timestamptz default now(), started_at timestamptz,
    completed_at timestamptz, rh_cost numeric, user_credit_cost numeric, waited_in_queue boolean default false,
    queue_wait_seconds integer, job_payload jsonb);
`
