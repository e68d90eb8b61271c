--! Previous: sha1:d769181fb2e867e6f7bd6fe7f6bdaced2e7e5ea2
--! Hash: sha1:c5b914c02323759a3d40209ab608e80521924f3c

-- Every webhook delivery, whatever became of it: applied, duplicate, forged,
-- malformed, oversized, ignored, or kept because no job could take it yet.
-- Kept deliveries are matched again by maintenance, so a callback is never
-- dropped.
create table rhpool.webhook_deliveries (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  job_table text,
  job_id uuid,
  attempt integer,
  task_id text,
  event text,
  outcome text not null
    constraint webhook_deliveries_outcome_is_known check (outcome in (
      'applied', 'duplicate', 'ignored_event', 'bad_signature', 'malformed', 'too_large',
      'kept', 'stale_attempt', 'task_mismatch')),
  http_status integer not null,
  detail text,
  body text,
  -- For kept deliveries: when maintenance finally applied (or gave up on) it.
  resolved_at timestamptz,
  resolution text
);
create index webhook_deliveries_kept on rhpool.webhook_deliveries (received_at) where outcome = 'kept' and resolved_at is null;
create index webhook_deliveries_by_job on rhpool.webhook_deliveries (job_table, job_id);
create index webhook_deliveries_received on rhpool.webhook_deliveries (received_at);
