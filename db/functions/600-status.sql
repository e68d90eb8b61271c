-- Status, read from SQL or served by GET /status. Account names only: keys
-- never reach the database. The per-account view, rhpool.account_status, is
-- defined earlier, in 130-accounts.sql (sync_accounts returns its rows).

-- Queue depth and oldest wait per tool.
create or replace view rhpool.queue_status as
select
  t.tool,
  t.job_table,
  count(r.job_id)::integer as queued,
  coalesce(extract(epoch from now() - min(r.fifo_at)), 0)::integer as oldest_wait_seconds
from rhpool.tools t
left join rhpool.runs r on r.job_table = t.job_table and r.status = 'queued'
group by t.tool, t.job_table;

-- The plan's JSON, exactly, plus what an operator needs at a glance. The
-- queue is read once (one pass over the queued runs), the accounts once.
-- SECURITY DEFINER: clients may call it (the README promises it) without any
-- right on rhpool's tables; it shows counts and account names, never a job.
create or replace function rhpool.pool_status()
returns jsonb
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  with queue as (
    select q.tool, q.queued, q.oldest_wait_seconds from rhpool.queue_status q
  ), accounts as (
    select * from rhpool.account_status
  )
  select jsonb_build_object(
    'totalMaxSlots', coalesce((select sum(a.max_slots) from accounts a where a.enabled and a.key_holders > 0), 0),
    'totalRunning', coalesce((select sum(a.running) from accounts a), 0),
    'totalQueued', coalesce((select sum(q.queued) from queue q), 0),
    'strategy', rhpool.setting('strategy'),
    'liveDispatchers', (select count(*) from rhpool.dispatchers d where d.live_until > now()),
    'accounts', coalesce((
      select jsonb_agg(jsonb_build_object(
        'name', a.name,
        'running', a.running,
        'maxSlots', a.max_slots,
        'available', a.available,
        'enabled', a.enabled,
        'disabledReason', a.disabled_reason,
        'disabledCode', a.disabled_code,
        'keyHolders', a.key_holders,
        'unheldReason', a.unheld_reason,
        'cooldownUntil', a.cooldown_until,
        'cooldownReason', a.cooldown_reason,
        'remainMoney', a.remain_money,
        'reportedConcurrency', a.reported_concurrency,
        'configuredSlots', a.configured_slots,
        'learnedLimit', a.learned_limit,
        'limitReason', a.limit_reason,
        'nextProbeAt', a.next_probe_at
      ) order by a.position, a.name)
      from accounts a), '[]'::jsonb),
    'queuedByTool', (select jsonb_object_agg(q.tool, q.queued order by q.tool) from queue q),
    'oldestQueuedSeconds', (select coalesce(max(q.oldest_wait_seconds), 0) from queue q)
  )
$$;

-- A job's place in the global queue (1 = next to start), computed from the
-- queue index rather than stored: nothing is rewritten row by row when the
-- queue moves. Null when the job is not queued.
--
-- SECURITY INVOKER: the job is read as the caller, so under RLS a client gets
-- a place only for a job it can see; the place itself is rhpool's
-- (queue_ahead), from the job's run.
create or replace function rhpool.queue_position(job_table text, job_id uuid)
returns integer
language plpgsql
stable
as $$
#variable_conflict use_variable
declare
  visible boolean;
begin
  perform rhpool.require_job_table(job_table, 'queue_position');
  execute format('select true from public.%I where id = $1 and status = ''queued''', job_table) into visible using job_id;
  if visible is null then
    return null;
  end if;
  return rhpool.queue_ahead(job_table, job_id) + 1;
end
$$;

-- How many queued jobs start before this queued job. SECURITY DEFINER so
-- queue_position works for clients; it tells a count, never a job.
create or replace function rhpool.queue_ahead(job_table text, job_id uuid)
returns integer
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
  select count(*)::integer
  from rhpool.runs me, rhpool.runs q
  where me.job_table = queue_ahead.job_table and me.job_id = queue_ahead.job_id and me.status = 'queued'
    and q.status = 'queued'
    and (q.priority > me.priority
         or (q.priority = me.priority and (q.fifo_at, q.job_id) < (me.fifo_at, me.job_id)))
$$;
