-- Reads one scheduler setting (rhpool.settings), with a fallback when unset.
create or replace function rhpool.setting(setting_key text, fallback text default null)
returns text
language sql
stable
as $$
  select coalesce((select value from rhpool.settings where key = setting_key), fallback)
$$;

-- The advisory lock that serialises admission to accounts. Every code path that
-- adds load to an account (claims, slot inserts) or changes an account's slots
-- takes it, so "count the free slots, then fill them" can never interleave.
create or replace function rhpool.lock_admission()
returns void
language sql
volatile
as $$
  select pg_advisory_xact_lock(7263541, 1)
$$;

-- Job statuses by role, named once so every function agrees.
create or replace function rhpool.in_flight_statuses()
returns text[]
language sql
immutable
as $$ select array['claimed', 'submitting', 'outcome_unknown', 'running'] $$;

create or replace function rhpool.terminal_statuses()
returns text[]
language sql
immutable
as $$ select array['completed', 'failed', 'cancelled'] $$;

-- Every function that takes a job table by name checks it here first: the
-- name is then safe to quote into dynamic SQL, and a wrong one gets one clear
-- message listing the tables there are. SECURITY DEFINER: clients' calls
-- (job_view, cancel_job, queue_position) check their table too, without a
-- right on rhpool.tools.
create or replace function rhpool.require_job_table(job_table text, caller text)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from rhpool.tools t where t.job_table = require_job_table.job_table) then
    raise exception '%: % is not a job table (known: %)', caller, coalesce(quote_literal(require_job_table.job_table), 'NULL'),
      (select string_agg(t.job_table, ', ' order by t.job_table) from rhpool.tools t)
      using errcode = 'invalid_parameter_value';
  end if;
end
$$;
