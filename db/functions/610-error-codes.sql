-- Error codes and what a user is told about them.
--
-- rhpool.error_codes is written from src/runninghub/classify.ts, the one owner
-- of what each RunningHub code (and each of rhpool's own failure codes) means
-- and what a user is told about it. `rhpool migrate` calls this after every
-- migrate with the whole table, so the database never keeps a code
-- classify.ts no longer has.
--
-- codes: [{"code": "1505", "class": "bad_request", "userMessage": "The job was refused by content moderation."}, ...]
create or replace function rhpool.load_error_codes(codes jsonb)
returns integer
language plpgsql
volatile
as $$
declare
  loaded integer;
begin
  if codes is null or jsonb_typeof(codes) <> 'array' or jsonb_array_length(codes) = 0 then
    raise exception 'load_error_codes: codes must be a non-empty JSON array' using errcode = 'invalid_parameter_value';
  end if;
  if not exists (select 1 from jsonb_array_elements(codes) e where e.value ->> 'code' = '*') then
    raise exception 'load_error_codes: the table needs a ''*'' entry (any other code)' using errcode = 'invalid_parameter_value';
  end if;
  delete from rhpool.error_codes c
   where not exists (select 1 from jsonb_array_elements(codes) e where e.value ->> 'code' = c.code);
  insert into rhpool.error_codes as c (code, class, user_message)
  select e.value ->> 'code', e.value ->> 'class', e.value ->> 'userMessage'
  from jsonb_array_elements(codes) e
  on conflict (code) do update set class = excluded.class, user_message = excluded.user_message
    where (c.class, c.user_message) is distinct from (excluded.class, excluded.user_message);
  select count(*)::integer into loaded from rhpool.error_codes;
  return loaded;
end
$$;

-- What an end user may be shown about a finished job that did not complete:
-- plain words by kind of failure, never RunningHub's raw text (the first
-- version showed users "queue limit reached"). Operators read error_code and
-- error_message. The words per code come from src/runninghub/classify.ts
-- (rhpool.error_codes, written at every migrate): SQL does not decide codes.
create or replace function rhpool.user_message(status text, error_code text)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select case
    when status not in ('failed', 'cancelled') then null
    else coalesce(
      (select c.user_message from rhpool.error_codes c
        where c.code = case when status = 'cancelled' then 'CANCELLED' else coalesce(user_message.error_code, '*') end),
      (select c.user_message from rhpool.error_codes c where c.code = '*'))
  end
$$;
