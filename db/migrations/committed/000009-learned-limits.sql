--! Previous: sha1:2e71cf81f5c5c41218eb4710a2ea87ec9cb5fdad
--! Hash: sha1:92d193fe7a35825c798521084c3e3549dfc53ae8

-- Limits learned, not guessed. Configured slots are a guess; RunningHub's
-- queue/status reports the real limit where it answers (reported_concurrency),
-- and a refusal (421 and kin) shows the limit is lower right now. What the
-- refusals taught is kept here; the effective limit is computed from all three
-- by rhpool.account_limits() (db/functions/045-account-limits.sql).
alter table rhpool.accounts
  -- The limit the last refusal left, before any probing back up.
  add column learned_limit integer
    constraint accounts_learned_limit_at_least_1 check (learned_limit >= 1),
  -- When it was learned: the limit grows back by one for every
  -- limit_probe_after_seconds without another refusal.
  add column learned_at timestamptz,
  -- RunningHub's words, for status.
  add column learned_reason text,
  add constraint accounts_learned_limit_has_a_time check ((learned_limit is null) = (learned_at is null));

insert into rhpool.settings (key, value) values
  ('limit_probe_after_seconds', '60')
on conflict (key) do nothing;

-- These functions gain a time parameter (so tests set the time instead of
-- sleeping); the old signatures would make every call ambiguous.
drop function if exists rhpool.cool_down_account(text, text);
