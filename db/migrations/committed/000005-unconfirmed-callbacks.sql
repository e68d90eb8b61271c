--! Previous: sha1:e676f1cb46c9d490ec8bd3165ea561bf5038aeae
--! Hash: sha1:b63676fbaeecd37a33fabc6f84e8edf9bd7e545b

-- With RHPOOL_CONFIRM_CALLBACKS on, a callback is held as 'unconfirmed' until
-- the dispatcher has asked RunningHub (query, with the account's key) whether
-- the task really ended; only RunningHub's answer finishes the job.
alter table rhpool.webhook_deliveries drop constraint webhook_deliveries_outcome_is_known;
alter table rhpool.webhook_deliveries add constraint webhook_deliveries_outcome_is_known check (outcome in (
  'applied', 'duplicate', 'ignored_event', 'bad_signature', 'malformed', 'too_large',
  'kept', 'stale_attempt', 'task_mismatch', 'unconfirmed'));
create index webhook_deliveries_unconfirmed on rhpool.webhook_deliveries (received_at) where outcome = 'unconfirmed' and resolved_at is null;
