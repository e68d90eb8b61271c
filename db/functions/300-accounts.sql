-- Syncs the account list from the dispatcher's configuration (never the keys:
-- name, slots, order and a short fingerprint). Accounts missing from the list
-- are disabled, not deleted: their running tasks still finish through the
-- webhook. Runs under the admission lock so a slot change never races a claim.
--
-- accounts: [{"name": "primary", "slots": 3, "position": 1, "fingerprint": "ab12…"}]
create or replace function rhpool.sync_accounts(accounts jsonb)
returns setof rhpool.account_status
language plpgsql
volatile
as $$
#variable_conflict use_variable
declare
  entry jsonb;
begin
  if accounts is null or jsonb_typeof(accounts) <> 'array' then
    raise exception 'sync_accounts: accounts must be a JSON array' using errcode = 'invalid_parameter_value';
  end if;
  perform rhpool.lock_admission();

  for entry in select value from jsonb_array_elements(accounts) loop
    if jsonb_typeof(entry -> 'name') <> 'string' or jsonb_typeof(entry -> 'slots') <> 'number' then
      raise exception 'sync_accounts: each account needs a string name and a number of slots, got %', entry
        using errcode = 'invalid_parameter_value';
    end if;
    insert into rhpool.accounts as a (name, position, slots, enabled, disabled_reason, key_fingerprint)
    values (entry ->> 'name', coalesce((entry ->> 'position')::integer, 1), (entry ->> 'slots')::integer, true, null, entry ->> 'fingerprint')
    on conflict (name) do update set
      position = excluded.position,
      slots = excluded.slots,
      key_fingerprint = excluded.key_fingerprint,
      -- A key that came back (or changed) gets another chance; an account an
      -- operator or the health check disabled for its own reason stays so
      -- until the same key works again.
      enabled = case when a.disabled_reason in ('key removed from configuration', 'no key configured yet')
                       or a.key_fingerprint is distinct from excluded.key_fingerprint
                     then true else a.enabled end,
      disabled_reason = case when a.disabled_reason in ('key removed from configuration', 'no key configured yet')
                               or a.key_fingerprint is distinct from excluded.key_fingerprint
                             then null else a.disabled_reason end,
      updated_at = now();
  end loop;

  update rhpool.accounts a
     set enabled = false, disabled_reason = 'key removed from configuration', updated_at = now()
   where a.enabled
     and not exists (select 1 from jsonb_array_elements(accounts) e where e.value ->> 'name' = a.name);

  perform pg_notify('rhpool_wakeup', 'accounts');
  return query select * from rhpool.account_status order by position, name;
end
$$;
