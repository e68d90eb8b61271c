--! Previous: sha1:8b5150ddac65c481400c46ef3be39cefec568f6f
--! Hash: sha1:a199d15e19279bdb0b3eb1a86500b3ef93df6235

-- Several dispatchers, each with its own set of keys (db/functions/060-dispatcher-presence.sql).
--
-- A dispatcher declares, on a heartbeat, which accounts it holds a key for and
-- that key's fingerprint (never the key). An account takes work while some
-- live dispatcher holds its key with the fingerprint recorded on the account;
-- "no key here" is no longer a disabled state written by whichever dispatcher
-- synced last, so a dispatcher with a shorter key list disables nobody.
create table rhpool.dispatchers (
  holder text primary key
    constraint dispatchers_holder_length check (length(holder) between 1 and 200),
  started_at timestamptz not null default now(),
  heartbeat_at timestamptz not null,
  -- heartbeat_at plus the dispatcher's own staleness bound (its interval × multiple):
  -- after this it no longer counts as holding anything.
  live_until timestamptz not null,
  constraint dispatchers_live_after_heartbeat check (live_until > heartbeat_at)
);

create table rhpool.dispatcher_keys (
  holder text not null references rhpool.dispatchers (holder) on delete cascade,
  account text not null
    constraint dispatcher_keys_account_format check (account ~ '^[a-z][a-z0-9_]{0,62}$'),
  key_fingerprint text not null
    constraint dispatcher_keys_fingerprint_is_short check (length(key_fingerprint) between 1 and 24),
  -- The slots this dispatcher's configuration gives the account: the account
  -- runs with the lowest any live holder declares.
  slots integer not null
    constraint dispatcher_keys_slots_between_0_and_10000 check (slots between 0 and 10000),
  primary key (holder, account)
);
create index dispatcher_keys_by_account on rhpool.dispatcher_keys (account, key_fingerprint);

-- Why an account is disabled, as a code every file compares (the sentence in
-- disabled_reason is for people):
--   operator        an operator took it out of rotation (rhpool.disable_account)
--   account_broken  RunningHub answered "bad key / no balance" (classify.ts's class)
--   low_balance     the health check saw the balance under min_balance
-- The health check re-enables account_broken and low_balance once the key
-- works again; operator stays until an operator enables it.
alter table rhpool.accounts add column disabled_code text
  constraint accounts_disabled_code_known check (disabled_code in ('operator', 'account_broken', 'low_balance'));

-- The two "no key" states of the first versions become what they now are:
-- not disabled, simply not held by any live dispatcher until one declares the key.
-- (The only place the old sentences are read, to convert rows written before codes.)
update rhpool.accounts
   set enabled = true, disabled_reason = null, updated_at = now()
 where not enabled and disabled_reason in ('key removed from configuration', 'no key configured yet');
update rhpool.accounts
   set disabled_code = case
         when disabled_reason ~ '^balance .* below the minimum ' then 'low_balance'
         when disabled_reason ~ '^[A-Za-z0-9_]+: ' then 'account_broken'
         else 'operator'
       end
 where not enabled;

-- strategy and lease_seconds are read from here at run time (the dispatcher
-- passes none of its own): one value each, owned by this table. The lease was
-- 60 here but 120 in the dispatcher's configuration, which was the value that
-- counted; a lease still at the old seed keeps the value that ran.
insert into rhpool.settings (key, value) values ('strategy', 'fill-first'), ('lease_seconds', '120')
on conflict (key) do nothing;
update rhpool.settings set value = '120' where key = 'lease_seconds' and value = '60';
alter table rhpool.settings add constraint settings_strategy_known
  check (key <> 'strategy' or value in ('fill-first', 'spread'));
alter table rhpool.settings add constraint settings_lease_seconds_between_5_and_3600
  check (key <> 'lease_seconds' or case when value ~ '^[0-9]{1,4}$' then value::integer between 5 and 3600 else false end);

-- RunningHub's error codes and rhpool's own failure codes, with their class
-- (classify.ts's AnswerClass; null for rhpool's own codes that are no answer)
-- and the words a user may be shown: written by `rhpool migrate` from
-- src/runninghub/classify.ts (its one owner) after every migrate, read by
-- rhpool.user_message(). Code '*' is any code not listed.
create table rhpool.error_codes (
  code text primary key,
  class text,
  user_message text not null
);

-- claim_account_slot gains a trailing parameter (the accounts a dispatcher
-- holds keys for); the old signature goes, so calls are never ambiguous.
drop function if exists rhpool.claim_account_slot(integer, text, integer, text);
-- disable_account gains a code (default 'operator').
drop function if exists rhpool.disable_account(text, text);
