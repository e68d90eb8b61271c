-- Functions earlier releases had and this one does not (renamed, or with
-- another argument list: an old overload left beside a new one would make
-- calls ambiguous). Dropped before the layer is applied. Triggers that used
-- the retired trigger functions were rhpool's own and go with them.

-- The design before rhpool.runs: copies of the state kept in step by triggers.
drop function if exists rhpool.job_sync() cascade;
drop function if exists rhpool.job_forget() cascade;
drop function if exists rhpool.slot_immutable_account() cascade;
drop function if exists rhpool.notify_wakeup() cascade;
drop function if exists rhpool.set_job_fields(text, uuid, jsonb);
drop function if exists rhpool.rebuild_jobs_view();
drop function if exists rhpool.repair_slot_drift();

-- Steps after a claim now name the claim's token.
drop function if exists rhpool.claim_account_slot(integer, text, integer, text);
drop function if exists rhpool.claimed_job(text, uuid, text);
drop function if exists rhpool.renew_lease(text, uuid, text, integer);
drop function if exists rhpool.begin_submission(text, uuid, text, integer);
drop function if exists rhpool.record_submission(text, uuid, text);
drop function if exists rhpool.release_to_queue(text, uuid, text);
drop function if exists rhpool.retry_later(text, uuid, text, text, numeric);
drop function if exists rhpool.mark_outcome_unknown(text, uuid, text);
drop function if exists rhpool.account_was_full(text, uuid, text, text);
drop function if exists rhpool.account_was_broken(text, uuid, text, text);

-- Maintenance decides at a time given as a parameter.
drop function if exists rhpool.expire_leases();
drop function if exists rhpool.fail_unresolved_unknowns();
drop function if exists rhpool.overdue_jobs();
drop function if exists rhpool.run_maintenance();
drop function if exists rhpool.retry_kept_callbacks();
drop function if exists rhpool.prune_history();
drop function if exists rhpool.end_cooldowns();

-- queue_ahead now takes the job's table and id (queue_position's arguments).
drop function if exists rhpool.queue_ahead(integer, timestamptz, uuid);

-- Superseded by rhpool.claim_unconfirmed / rhpool.confirm_callback
-- (310-confirmation.sql): each held callback is leased to one confirming
-- round and applied to the attempt it was for.
drop function if exists rhpool.unconfirmed_callbacks(integer);
drop function if exists rhpool.resolve_unconfirmed(bigint, jsonb);

-- Superseded by rhpool.accounts_held_for (120-dispatcher-presence.sql): the
-- claim asks for every account at once instead of once per account.
drop function if exists rhpool.account_held_for(text, text, text, timestamptz);
drop function if exists rhpool.accounts_held_for(text, timestamptz);

-- take_callbacks takes the accounts (and key fingerprints) the receiving
-- process can confirm for (a claim plainly the attempt's is handed to it,
-- leased: hand_over_claim), and answers the handed delivery; claim_unconfirmed
-- takes the fingerprints of the claimer's keys.
drop function if exists rhpool.take_callbacks(text[], text[], uuid[], integer[], text[], jsonb[], text[]);
drop function if exists rhpool.claim_unconfirmed(text[], integer, numeric);

-- hold_callback and receive_claim hold through rhpool.hold_claims, which
-- takes a batch in one statement (310-confirmation.sql).
drop function if exists rhpool.hold_callback_of(jsonb, text, uuid, integer, text, jsonb, text);
