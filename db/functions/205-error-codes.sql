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
