-- Confirmed callbacks (RHPOOL_CONFIRM_CALLBACKS): a callback's content is a
-- claim. The webhook records it as 'unconfirmed' (one short transaction, no
-- outbound HTTP on the request path) and wakes the dispatchers, which ask
-- RunningHub and apply RunningHub's own answer.

-- hold_callback with the job's row already read (job: read_job's answer).
-- Nothing is locked: a held callback finishes nothing; the confirmation reads
-- the job again under its lock and decides. A callback for a job that is
-- already finished is recorded as a duplicate at once.
create or replace function rhpool.hold_callback_of(job jsonb, job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text)
returns text
language plpgsql
volatile
as $$
begin
  if job is not null and job ->> 'status' = any (rhpool.terminal_statuses()) then
    insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback)
    values (hold_callback_of.job_table, hold_callback_of.job_id, hold_callback_of.attempt, hold_callback_of.task_id, 'TASK_END', 'duplicate', 200,
            'job already ' || (job ->> 'status'), left(hold_callback_of.body, 65536), hold_callback_of.callback);
    return 'duplicate';
  end if;
  insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback)
  values (hold_callback_of.job_table, hold_callback_of.job_id, hold_callback_of.attempt, hold_callback_of.task_id, 'TASK_END', 'unconfirmed', 200,
          'waiting for RunningHub to confirm with query', left(hold_callback_of.body, 65536), hold_callback_of.callback);
  perform pg_notify('rhpool_confirm', '');
  return 'unconfirmed';
end
$$;

-- A callback that cannot be acted on as sent (or, with confirmation on, any
-- callback) held for a dispatcher to confirm with RunningHub's query.
create or replace function rhpool.hold_callback(job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text)
returns text
language sql
volatile
as $$
  select rhpool.hold_callback_of(rhpool.read_job(hold_callback.job_table, hold_callback.job_id), hold_callback.job_table, hold_callback.job_id,
    hold_callback.attempt, hold_callback.task_id, hold_callback.callback, hold_callback.body)
$$;

-- The webhook's way in when callbacks are claims: one naming a task that
-- cannot be this job's (the job runs another, or another job holds it) is
-- refused on arrival, as the trusting path does, without being held or asked
-- about; anything else is held for confirmation (hold_callback_of). The job is
-- read, not locked: the route never waits for a transition, and the
-- confirmation checks the same things again under the job's lock.
create or replace function rhpool.receive_claim(job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text)
returns text
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.read_job(receive_claim.job_table, receive_claim.job_id);
  holder text;
  detail text;
begin
  if job is not null and not (job ->> 'status' = any (rhpool.terminal_statuses())) and receive_claim.task_id is not null then
    if job ->> 'task_id' is not null and job ->> 'task_id' <> receive_claim.task_id then
      detail := format('job runs task %s, callback is for task %s', job ->> 'task_id', receive_claim.task_id);
    else
      holder := rhpool.task_id_holder(receive_claim.task_id, receive_claim.job_table, receive_claim.job_id);
      if holder is not null then
        detail := format('task %s belongs to %s', receive_claim.task_id, holder);
      end if;
    end if;
  end if;
  if detail is null then
    return rhpool.hold_callback_of(job, receive_claim.job_table, receive_claim.job_id, receive_claim.attempt, receive_claim.task_id, receive_claim.callback, receive_claim.body);
  end if;
  insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback)
  values (receive_claim.job_table, receive_claim.job_id, receive_claim.attempt, receive_claim.task_id, 'TASK_END', 'task_mismatch', 200,
          detail, left(receive_claim.body, 65536), receive_claim.callback);
  return 'task_mismatch';
end
$$;

-- Why a held callback cannot be its job's attempt's, or null when it can be:
-- no such job, the job already finished, no task named, another task than the
-- job runs, a task another job holds, an attempt the job has left. The one
-- definition claim_unconfirmed refuses by and hand_over_claim hands over by.
create or replace function rhpool.claim_refusal(
  job_table text, job_id uuid, status text, job_task text, job_attempts integer, claimed_task text, attempt integer
)
returns text
language sql
stable
as $$
  select case
    when status is null then 'no such job'
    when status = any (rhpool.terminal_statuses()) then 'duplicate: job already ' || status
    when claimed_task is null then 'refuted: the callback names no task'
    when job_task is not null and job_task <> claimed_task then format('refuted: it names task %s, the job runs task %s', claimed_task, job_task)
    when job_task is null and rhpool.task_id_holder(claimed_task, job_table, job_id) is not null then
      format('refuted: task %s belongs to %s', claimed_task, rhpool.task_id_holder(claimed_task, job_table, job_id))
    when job_attempts > attempt then format('refuted: callback for attempt %s, job is on attempt %s', attempt, job_attempts)
  end
$$;

-- The hand-over: when the receiving process holds the recorded key of the
-- job's account (handed_to, handed_keys: its accounts and its keys'
-- fingerprints, aligned; rhpool.holds_recorded_key) and the callback is plainly
-- this attempt's (it names the task the job runs, or one no job holds while the
-- job's own is not recorded yet, and the job's attempt), the callback is held
-- already leased to that process, as claim_unconfirmed would lease it, and its
-- delivery id and account come back for the process to confirm at once: no
-- notification, no claiming transaction. Anything else comes back null with
-- nothing written, and receive_claim holds it for any process's rounds. If the
-- process dies, the lease runs out and claim_unconfirmed takes the claim, as
-- it takes every other. (Apart from receive_claim, so a route without keys pays
-- nothing for it.)
create or replace function rhpool.hand_over_claim(
  job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text,
  handed_to text[], handed_keys text[], lease_seconds numeric,
  out handed_delivery bigint, out handed_account text
)
language plpgsql
volatile
as $$
declare
  job jsonb := rhpool.read_job(hand_over_claim.job_table, hand_over_claim.job_id);
begin
  -- Refused, or not exactly this attempt (claim_unconfirmed would lease a later one; here only the job's own).
  if rhpool.claim_refusal(hand_over_claim.job_table, hand_over_claim.job_id, job ->> 'status', job ->> 'task_id',
                          (job ->> 'attempts')::integer, hand_over_claim.task_id, hand_over_claim.attempt) is not null
     or (job ->> 'attempts')::integer is distinct from hand_over_claim.attempt
     or coalesce(hand_over_claim.lease_seconds, 0) <= 0
     or not rhpool.holds_recorded_key(job ->> 'api_account', hand_over_claim.handed_to, hand_over_claim.handed_keys) then
    return;
  end if;
  insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback, confirm_after)
  values (hand_over_claim.job_table, hand_over_claim.job_id, hand_over_claim.attempt, hand_over_claim.task_id, 'TASK_END', 'unconfirmed', 200,
          'handed to the receiving process to confirm with query', left(hand_over_claim.body, 65536), hand_over_claim.callback,
          now() + make_interval(secs => hand_over_claim.lease_seconds))
  returning id into handed_delivery;
  handed_account := job ->> 'api_account';
end
$$;

-- Held callbacks are claims about one task of one job's attempt. Before anyone
-- asks RunningHub, a claim that cannot be this attempt's is refused here: no
-- task id, another task than the job's, a task another job holds, an attempt
-- the job has left. Such a claim never finishes a job, whatever RunningHub
-- says about the task it names. The rest are claimed (confirm_after, a lease)
-- by one dispatcher holding the key of the job's account: accounts and
-- key_fingerprints, aligned, name the keys it holds; only the recorded key of
-- an account is one to ask with (rhpool.holds_recorded_key).
create or replace function rhpool.claim_unconfirmed(accounts text[], key_fingerprints text[], max_rows integer, lease_seconds numeric)
returns table (delivery_id bigint, job_table text, job_id uuid, api_account text, task_id text)
language plpgsql
volatile
as $$
declare
  d record;
  refusal text;
begin
  if cardinality(claim_unconfirmed.accounts) is distinct from cardinality(claim_unconfirmed.key_fingerprints) then
    raise exception 'claim_unconfirmed: accounts and key_fingerprints must have one entry per account (got % and %)',
      cardinality(claim_unconfirmed.accounts), cardinality(claim_unconfirmed.key_fingerprints)
      using errcode = 'invalid_parameter_value';
  end if;
  for d in
    select w.id, w.job_table, w.job_id, w.attempt, w.task_id as claimed_task,
           j.status, j.task_id as job_task, j.attempts, j.api_account as account
    from rhpool.webhook_deliveries w
    left join rhpool.jobs j on j.job_table = w.job_table and j.id = w.job_id
    where w.outcome = 'unconfirmed' and w.resolved_at is null
      and (w.confirm_after is null or w.confirm_after <= now())
      and (j.api_account is null or j.status = any (rhpool.terminal_statuses())
           or rhpool.holds_recorded_key(j.api_account, claim_unconfirmed.accounts, claim_unconfirmed.key_fingerprints))
    order by w.received_at
    limit claim_unconfirmed.max_rows
    for update of w skip locked
  loop
    refusal := rhpool.claim_refusal(d.job_table, d.job_id, d.status, d.job_task, d.attempts, d.claimed_task, d.attempt);
    if refusal is not null then
      update rhpool.webhook_deliveries w set resolved_at = now(), resolution = refusal where w.id = d.id;
      continue;
    end if;
    if d.account is null then
      continue;
    end if;
    update rhpool.webhook_deliveries w set confirm_after = now() + make_interval(secs => claim_unconfirmed.lease_seconds) where w.id = d.id;
    delivery_id := d.id;
    job_table := d.job_table;
    job_id := d.job_id;
    api_account := d.account;
    task_id := d.claimed_task;
    return next;
  end loop;
end
$$;

-- RunningHub's answer (query, with the account's key) about a held callback's
-- task, applied to the attempt the callback was for: a final status finishes
-- the job with RunningHub's content, not the callback's. "Not over" refutes the
-- claim (the true end brings its own callback, or reconciliation asks again).
-- A job not yet far enough to take it (still claimed) is asked about again later.
create or replace function rhpool.confirm_callback(delivery_id bigint, callback jsonb, retry_seconds numeric)
returns text
language plpgsql
volatile
as $$
declare
  d record;
  result record;
begin
  select w.id, w.job_table, w.job_id, w.attempt, w.task_id, w.received_at into d
  from rhpool.webhook_deliveries w where w.id = confirm_callback.delivery_id and w.resolved_at is null
  for update;
  if not found then
    return null;
  end if;
  if confirm_callback.callback is null or coalesce(confirm_callback.callback ->> 'status', '') not in ('SUCCESS', 'FAILED', 'CANCEL') then
    update rhpool.webhook_deliveries w set resolved_at = now(), resolution = 'refuted: RunningHub says ' || coalesce(confirm_callback.callback ->> 'status', 'nothing')
     where w.id = d.id;
    return 'refuted';
  end if;
  result := rhpool.apply_task_end(d.job_table, d.job_id, d.attempt, d.task_id, confirm_callback.callback);
  if result.outcome = 'kept'
     and d.received_at > now() - make_interval(secs => rhpool.setting('kept_callback_window_seconds', '3600')::numeric) then
    update rhpool.webhook_deliveries w set confirm_after = now() + make_interval(secs => confirm_callback.retry_seconds) where w.id = d.id;
    return 'kept';
  end if;
  update rhpool.webhook_deliveries w set resolved_at = now(), resolution = 'confirmed: ' || result.outcome || ': ' || result.detail where w.id = d.id;
  return result.outcome;
end
$$;

-- RunningHub could not be asked (timeout, 5xx): any dispatcher tries again after this.
create or replace function rhpool.postpone_unconfirmed(delivery_id bigint, retry_seconds numeric)
returns void
language sql
volatile
as $$
  update rhpool.webhook_deliveries w set confirm_after = now() + make_interval(secs => postpone_unconfirmed.retry_seconds)
   where w.id = postpone_unconfirmed.delivery_id and w.resolved_at is null
$$;
