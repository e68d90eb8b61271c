--! Previous: sha1:c5b914c02323759a3d40209ab608e80521924f3c
--! Hash: sha1:3b0331f2690dae07b0de816e2c89501c49a2ea37

-- What maintenance needs to remember between rounds.

-- The parsed callback, so a kept delivery can be applied later without
-- parsing its body again.
alter table rhpool.webhook_deliveries add column callback jsonb;

-- When RunningHub was last asked about this in-flight job, so an overdue job
-- is queried once per interval, not on every round.
alter table rhpool.slots add column checked_at timestamptz;

-- A log of every repair maintenance made, so none is silent.
create table rhpool.maintenance_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  action text not null,
  job_table text,
  job_id uuid,
  account text,
  detail text
);
create index maintenance_log_at on rhpool.maintenance_log (at);

insert into rhpool.settings (key, value) values
  ('kept_callback_window_seconds', '3600'),
  ('retention_days', '30'),
  ('reconcile_interval_seconds', '60'),
  ('min_balance', '0')
on conflict (key) do nothing;
