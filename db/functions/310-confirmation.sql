-- Confirmed callbacks (RHPOOL_CONFIRM_CALLBACKS): a callback's content is a
-- claim. The webhook records it as 'unconfirmed' (one short transaction, no
-- outbound HTTP on the request path) and wakes the dispatchers, which ask
-- RunningHub and apply RunningHub's own answer.

-- Callbacks held for a dispatcher to confirm with RunningHub's query, as many
-- at once as arrive together (take_callbacks). Each is recorded 'unconfirmed'
-- and the dispatchers are woken; one for a job already finished is recorded
-- as a duplicate at once. With refuse_other_tasks (receive_claim), one naming
-- a task that cannot be this job's (the job runs another, or another job
-- holds it) is refused on arrival, as the trusting path refuses it, without
-- being held or asked about. refuse_other_tasks is per callback.
--
-- The jobs are read, not locked: the route never waits for a transition, and
-- the confirmation reads each job again under its lock and decides. Since
-- nothing here changes a job, no callback of a batch depends on another, and
-- the batch is one statement rather than a function call per callback
-- (bench/webhook.ts). ord is each callback's place in the arrays, from 1.
--
-- A generic plan, made once for the session: a custom plan is made again at
-- every call, and planning this statement (it reads every job table) cost
-- ~4 ms a batch in its first version, five times its execution. Its
-- parameters are arrays, so a custom plan would be no better.
create or replace function rhpool.hold_claims(
  job_tables text[], job_ids uuid[], attempts integer[], task_ids text[], callbacks jsonb[], bodies text[],
  refuse_other_tasks boolean[]
)
returns table (ord integer, value text)
language plpgsql
volatile
set plan_cache_mode = force_generic_plan
as $$
declare
  held boolean := false;
begin
  perform rhpool.require_one_entry_each('hold_claims', 'callback',
    array['job_tables', 'job_ids', 'attempts', 'task_ids', 'callbacks', 'bodies', 'refuse_other_tasks'],
    array[cardinality(hold_claims.job_tables), cardinality(hold_claims.job_ids), cardinality(hold_claims.attempts),
          cardinality(hold_claims.task_ids), cardinality(hold_claims.callbacks), cardinality(hold_claims.bodies),
          cardinality(hold_claims.refuse_other_tasks)]);
  for ord, value in
    -- Materialized: each callback's refusal (task_id_holder reads every job table) is made once, not once per use.
    with claims as materialized (
      select i.ord::integer as ord, i.job_table, i.job_id, i.attempt, i.task_id, i.callback, i.body, j.status as job_status,
             j.id is not null and j.status = any (rhpool.terminal_statuses()) as job_finished,
             case when i.refuse and j.id is not null and not (j.status = any (rhpool.terminal_statuses())) and i.task_id is not null then
               case when j.task_id is not null and j.task_id <> i.task_id then format('job runs task %s, callback is for task %s', j.task_id, i.task_id)
                    else (select format('task %s belongs to %s', i.task_id, o.holder)
                          from (select rhpool.task_id_holder(i.task_id, i.job_table, i.job_id) as holder) o
                          where o.holder is not null)
               end
             end as refusal
      from unnest(hold_claims.job_tables, hold_claims.job_ids, hold_claims.attempts, hold_claims.task_ids,
                  hold_claims.callbacks, hold_claims.bodies, hold_claims.refuse_other_tasks)
           with ordinality as i(job_table, job_id, attempt, task_id, callback, body, refuse, ord)
      left join rhpool.tools t on t.job_table = i.job_table
      left join rhpool.job_rows j on j.tableoid = t.relation and j.id = i.job_id
    ),
    decided as (
      select c.*,
             case when c.refusal is not null then 'task_mismatch' when c.job_finished then 'duplicate' else 'unconfirmed' end as outcome
      from claims c
    ),
    written as (
      insert into rhpool.webhook_deliveries (job_table, job_id, attempt, task_id, event, outcome, http_status, detail, body, callback)
      select d.job_table, d.job_id, d.attempt, d.task_id, 'TASK_END', d.outcome, 200,
             case d.outcome when 'task_mismatch' then d.refusal
                            when 'duplicate' then 'job already ' || d.job_status
                            else 'waiting for RunningHub to confirm with query' end,
             left(d.body, 65536), d.callback
      from decided d
      order by d.ord
    )
    select d.ord, d.outcome from decided d
  loop
    held := held or value = 'unconfirmed';
    return next;
  end loop;
  -- One wake-up per batch: notifications alike are folded into one at commit anyway.
  if held then
    perform pg_notify('rhpool_confirm', '');
  end if;
end
$$;

-- One callback that cannot be acted on as sent (or, with confirmation on, any
-- callback) held for a dispatcher to confirm with RunningHub's query.
create or replace function rhpool.hold_callback(job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text)
returns text
language plpgsql
volatile
as $$
begin
  return (select h.value from rhpool.hold_claims(array[hold_callback.job_table], array[hold_callback.job_id], array[hold_callback.attempt],
                                                 array[hold_callback.task_id], array[hold_callback.callback], array[hold_callback.body], array[false]) h);
end
$$;

-- One callback received as a claim: refused on arrival if it names another
-- task than the job's, else held (hold_claims).
create or replace function rhpool.receive_claim(job_table text, job_id uuid, attempt integer, task_id text, callback jsonb, body text)
returns text
language plpgsql
volatile
as $$
begin
  return (select h.value from rhpool.hold_claims(array[receive_claim.job_table], array[receive_claim.job_id], array[receive_claim.attempt],
                                                 array[receive_claim.task_id], array[receive_claim.callback], array[receive_claim.body], array[true]) h);
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
