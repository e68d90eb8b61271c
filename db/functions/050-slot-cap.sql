-- The hard cap, enforced by the database itself: a slot row is refused when its
-- account is already full at its effective limit (045-account-limits.sql),
-- whoever inserts it. Taking the admission lock here
-- (re-entrant for claim_account_slot(), which already holds it) makes the count
-- and the insert one indivisible step even for a hand-written INSERT.
create or replace function rhpool.slot_cap()
returns trigger
language plpgsql
as $$
declare
  limit_slots integer;
  held integer;
begin
  perform rhpool.lock_admission();
  limit_slots := rhpool.effective_limit(new.account);
  if limit_slots is null then
    raise exception 'rhpool.slots.account: no account named %', new.account
      using errcode = 'foreign_key_violation', column = 'account';
  end if;
  select count(*)::integer into held from rhpool.slots s where s.account = new.account;
  if held >= limit_slots then
    raise exception 'rhpool.slots: account % is full (% of % slots in use)', new.account, held, limit_slots
      using errcode = 'check_violation', column = 'account',
            detail = format('%s is the effective limit (configured %s): %s', limit_slots,
              (select a.slots from rhpool.accounts a where a.name = new.account),
              coalesce((select s.limit_reason from rhpool.account_status s where s.name = new.account), 'the configured slots'));
  end if;
  return new;
end
$$;

create or replace trigger slots_cap
  before insert on rhpool.slots
  for each row execute function rhpool.slot_cap();

-- Moving a slot to another account would dodge the cap; slots are never moved.
create or replace function rhpool.slot_immutable_account()
returns trigger
language plpgsql
as $$
begin
  if new.account is distinct from old.account or new.job_table is distinct from old.job_table or new.job_id is distinct from old.job_id then
    raise exception 'rhpool.slots: a slot cannot move to another account or job (account %, job %)', old.account, old.job_id
      using errcode = 'check_violation', column = 'account';
  end if;
  return new;
end
$$;

create or replace trigger slots_immutable
  before update on rhpool.slots
  for each row execute function rhpool.slot_immutable_account();
