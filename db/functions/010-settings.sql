-- The vocabulary every later file uses: scheduler settings, the admission
-- lock, and job statuses by role.

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

-- A setting that must exist (strategy, lease_seconds): the settings row is the
-- one owner of its value, so there is no second default to fall back on.
create or replace function rhpool.required_setting(setting_key text)
returns text
language plpgsql
stable
as $$
declare
  found text := (select s.value from rhpool.settings s where s.key = setting_key);
begin
  if found is null then
    raise exception 'rhpool.settings has no % row: it holds the value every dispatcher uses (insert it again, e.g. insert into rhpool.settings values (%, ...))',
      quote_literal(setting_key), quote_literal(setting_key)
      using errcode = 'no_data_found';
  end if;
  return found;
end
$$;
