-- The hard cap, enforced by the database itself: a run that takes a slot
-- (gets an account) is refused when its account is already full at its
-- effective limit (100-account-limits.sql), whoever writes it. Taking the
-- admission lock here (re-entrant for claim_account_slot(), which already
-- holds it) makes the count and the write one indivisible step even for a
-- hand-written UPDATE.
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
    raise exception 'rhpool.runs.account: no account named %', new.account
      using errcode = 'foreign_key_violation', column = 'account';
  end if;
  select count(*)::integer into held from rhpool.runs r where r.account = new.account;
  if held >= limit_slots then
    raise exception 'rhpool.runs: account % is full (% of % slots in use)', new.account, held, limit_slots
      using errcode = 'check_violation', column = 'account',
            detail = format('%s is the effective limit (configured %s): %s', limit_slots,
              (select a.slots from rhpool.accounts a where a.name = new.account),
              coalesce((select s.limit_reason from rhpool.account_status s where s.name = new.account), 'the configured slots'));
  end if;
  return new;
end
$$;

create or replace trigger runs_slot_cap_insert
  before insert on rhpool.runs
  for each row when (new.account is not null) execute function rhpool.slot_cap();

-- A slot is taken when a run gets an account; a run never moves from one
-- account to another (that would dodge the cap): it goes back to the queue first.
create or replace trigger runs_slot_cap_update
  before update of account on rhpool.runs
  for each row when (new.account is not null and old.account is distinct from new.account) execute function rhpool.slot_cap();

create or replace function rhpool.run_keeps_its_account()
returns trigger
language plpgsql
as $$
begin
  raise exception 'rhpool.runs: a run cannot move from account % to % (job %); it goes back to the queue first', old.account, new.account, old.job_id
    using errcode = 'check_violation', column = 'account';
end
$$;

create or replace trigger runs_keep_account
  before update of account on rhpool.runs
  for each row when (old.account is not null and new.account is not null and old.account <> new.account)
  execute function rhpool.run_keeps_its_account();
