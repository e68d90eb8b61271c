--! Previous: sha1:4fa6e319ae659ca6bb17ba62d3a7c6fd151f8887
--! Hash: sha1:1a46133d84762e99a6db9b385e03416a9c1f51ff

-- One owner of scheduling state: rhpool.runs.
--
-- Until now a job's scheduling state lived in three copies kept in step by
-- triggers: the product's columns, rhpool.queue (the queued jobs) and
-- rhpool.slots (the jobs in flight). rhpool.runs replaces the last two with
-- one row per unfinished job (pending, queued or in flight) that holds every
-- fact admission decides on: status, account, attempts, the claim (token,
-- holder, lease), task id, not-before, priority and FIFO time. The queue and
-- the slots are partial indexes over it. A run ends (its row is deleted) in
-- the transaction that finishes the job; the product's row keeps the result.
--
-- The product's job tables keep their columns; rhpool writes status,
-- api_account and the result columns there in the same transaction as each
-- transition, through rhpool.job_rows: a parent table every job table
-- inherits from, so one static UPDATE reaches any job table (a fifth tool is a
-- table and a registry row, no other code path).
--
-- Carries over every database migrated so far (and, through 000001, the
-- first version's shape): queued jobs keep their FIFO keys, jobs in flight
-- keep their account, claim holder, lease and last reconciliation check.

create table rhpool.job_rows (
  id uuid,
  user_id uuid,
  status text,
  api_account text,
  task_id text,
  priority integer,
  attempts integer,
  max_attempts integer,
  not_before timestamptz,
  created_at timestamptz,
  claimed_at timestamptz,
  submitted_at timestamptz,
  started_at timestamptz,
  completed_at timestamptz,
  cancel_requested_at timestamptz,
  updated_at timestamptz,
  error_code text,
  error_message text,
  output_url text,
  outputs jsonb,
  rh_usage jsonb,
  rh_cost numeric,
  rh_cost_field text,
  rh_cost_unit text,
  queue_wait_seconds integer,
  waited_in_queue boolean
);
comment on table rhpool.job_rows is
  'Parent of every job table (table inheritance): rhpool''s transitions write the product''s rows through it with static SQL. Holds no rows of its own.';

-- The relation of each job table, so a transition names its row by
-- (tableoid, id) without parsing a name.
alter table rhpool.tools add column relation regclass;
update rhpool.tools t set relation = format('public.%I', t.job_table)::regclass;

do $inherit$
declare
  job_table text;
begin
  for job_table in select t.job_table from rhpool.tools t order by t.job_table loop
    execute format('alter table public.%I inherit rhpool.job_rows', job_table);
  end loop;
end
$inherit$;

create sequence rhpool.claim_tokens as bigint;

create table rhpool.runs (
  job_table text not null references rhpool.tools (job_table),
  job_id uuid not null,
  status text not null
    constraint runs_status_is_unfinished check (status in ('pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running')),
  priority integer not null default 0,
  -- The job's place in the global queue: when rhpool queued it.
  fifo_at timestamptz not null,
  not_before timestamptz,
  -- The account whose slot the job holds: set exactly while it is in flight.
  account text references rhpool.accounts (name) on update cascade,
  attempts integer not null default 0,
  max_attempts integer not null default 5,
  -- Every claim gets a new token; every step after the claim names it, so a
  -- worker whose claim was recovered (and perhaps given to another) is refused.
  claim_token bigint,
  holder text,
  -- While a dispatcher holds the claim (before RunningHub answered): past this
  -- time the claim is recovered. Null once RunningHub has the task.
  lease_expires_at timestamptz,
  claimed_at timestamptz,
  submitted_at timestamptz,
  task_id text,
  checked_at timestamptz,
  cancel_requested_at timestamptz,
  constraint runs_pkey primary key (job_table, job_id),
  constraint runs_account_exactly_in_flight
    check ((account is not null) = (status in ('claimed', 'submitting', 'outcome_unknown', 'running'))),
  constraint runs_claim_token_while_claimed check (status not in ('claimed', 'submitting') or claim_token is not null),
  constraint runs_attempts_not_negative check (attempts >= 0)
);
comment on table rhpool.runs is
  'One row per unfinished job: its scheduling state, owned by rhpool. The queue and the slots are indexes over it.';

-- The global queue, in FIFO order.
create index runs_queue on rhpool.runs (priority desc, fifo_at, job_id) where status = 'queued';
-- The slots: jobs in flight by account.
create index runs_in_flight on rhpool.runs (account) where account is not null;
create index runs_leases on rhpool.runs (lease_expires_at) where lease_expires_at is not null;
create index runs_cancel_requested on rhpool.runs (cancel_requested_at) where cancel_requested_at is not null;
create index runs_outcome_unknown on rhpool.runs (submitted_at) where status = 'outcome_unknown';
create index runs_running on rhpool.runs (submitted_at) where status = 'running';

do $carry$
declare
  job_table text;
begin
  for job_table in select t.job_table from rhpool.tools t order by t.job_table loop
    execute format($sql$
      insert into rhpool.runs (job_table, job_id, status, priority, fifo_at, not_before, account, attempts, max_attempts,
                               claim_token, holder, lease_expires_at, claimed_at, submitted_at, task_id, checked_at, cancel_requested_at)
      select %1$L, j.id, j.status, j.priority, coalesce(q.created_at, j.created_at), j.not_before,
             case when j.status in ('claimed', 'submitting', 'outcome_unknown', 'running') then coalesce(s.account, j.api_account) end,
             j.attempts, j.max_attempts,
             case when j.status in ('claimed', 'submitting') then nextval('rhpool.claim_tokens') end,
             s.holder,
             case when j.status in ('claimed', 'submitting') then coalesce(s.lease_expires_at, now()) end,
             j.claimed_at, j.submitted_at, j.task_id, s.checked_at, j.cancel_requested_at
      from public.%1$I j
      left join rhpool.queue q on q.job_table = %1$L and q.job_id = j.id
      left join rhpool.slots s on s.job_table = %1$L and s.job_id = j.id
      where j.status in ('pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running')
    $sql$, job_table);
  end loop;
end
$carry$;

-- The two copies the runs replace. Their triggers and the functions that
-- wrote them are replaced by the function layer applied after this migration.
drop table rhpool.queue cascade;
drop table rhpool.slots cascade;
