-- Status, read from SQL or served by GET /status. Account names only: keys
-- never reach the database. The per-account view, rhpool.account_status, is
-- defined earlier, in 130-accounts.sql (sync_accounts returns its rows).

-- Queue depth and oldest wait per tool, without reading the queue: the depth
-- from the counts the queue's writers keep (025-queue-counts.sql), the oldest
-- wait from one probe of runs_queue_by_table per tool. Same answers as
-- count(*) and min(fifo_at) over the queued runs.
create or replace view rhpool.queue_status as
select
  t.tool,
  t.job_table,
  coalesce(q.queued, 0)::integer as queued,
  coalesce(extract(epoch from now() - (
    select min(r.fifo_at) from rhpool.runs r where r.job_table = t.job_table and r.status = 'queued')), 0)::integer as oldest_wait_seconds
from rhpool.tools t
left join (select c.job_table, sum(c.queued) as queued from rhpool.queued_by_table() c group by c.job_table) q on q.job_table = t.job_table;

-- The plan's JSON, exactly, plus what an operator needs at a glance. The
-- queue is never read: its depth and oldest wait come from queue_status
-- (counts and one index probe per tool), read once; the accounts once.
-- SECURITY DEFINER: clients may call it (the README promises it) without any
-- right on rhpool's tables; it shows counts and account names, never a job.
--
-- PL/pgSQL for its plan: a SQL function's query is planned at every call
-- (tens of ms here, more than it takes to run); PL/pgSQL keeps the plan for the
-- session, and the dashboard polls this every second.
create or replace function rhpool.pool_status()
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  return (
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
  ));
end
$$;

-- A job's place in the global queue (1 = next to start), computed from the
-- queue's counts rather than stored: nothing is rewritten row by row when the
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

-- How many queued jobs start before this queued job: the queued runs with a
-- higher priority, or the same priority and (fifo_at, job_id) before its own
-- — what counting them would say, without counting them. From
-- rhpool.queue_counts (025-queue-counts.sql), level by level, each a range of
-- one index:
--   level 3  the higher priorities (per job table and priority);
--   level 2  its priority's ~4.5-minute buckets before its own;
--   level 1  the ~1-second buckets before its own, inside its level-2 bucket;
--   level 0  the instants (and, at its own instant, the id bytes) before its
--            own, inside its level-1 bucket;
-- then, in rhpool.runs, the jobs of its own instant and id byte with a smaller
-- id (a 256th of the jobs one transaction inserted at once); and the moves
-- not yet folded into the counts (the journal), all in one snapshot.
-- SECURITY DEFINER so queue_position works for clients; it tells a count,
-- never a job. enable_seqscan off: every part but the journal (read whole) is
-- an index range, and a generic plan must not guess otherwise. jit off: the
-- journal's seq scan, the one left, then costs 10^10 to the planner, far past
-- jit_above_cost, and compiling the plan took ~0.6 s at every call here.
create or replace function rhpool.queue_ahead(job_table text, job_id uuid)
returns integer
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
set enable_seqscan = off
set jit = off
set plan_cache_mode = force_generic_plan
as $$
begin
  -- PL/pgSQL, not SQL: the plan is made once for the session (generic: the
  -- same index ranges whatever the job) instead of at every call.
  return coalesce((
    select ((select coalesce(sum(c.queued), 0) from rhpool.queue_counts c
             where c.level = 3 and c.priority > me.priority)
          + (select coalesce(sum(c.queued), 0) from rhpool.queue_counts c
             where c.level = 2 and c.priority = me.priority and c.bucket < me.instant >> 28)
          + (select coalesce(sum(c.queued), 0) from rhpool.queue_counts c
             where c.level = 1 and c.priority = me.priority
               and c.bucket >= (me.instant >> 28) << 8 and c.bucket < me.instant >> 20)
          + (select coalesce(sum(c.queued), 0) from rhpool.queue_counts c
             where c.level = 0 and c.priority = me.priority
               and (c.bucket, c.id_byte) >= ((me.instant >> 20) << 20, 0::smallint)
               and (c.bucket, c.id_byte) < (me.instant, me.id_byte))
          + (select count(*) from rhpool.runs q
             where q.status = 'queued' and q.priority = me.priority and q.fifo_at = me.fifo_at
               and q.job_id >= rhpool.queue_id_floor(me.id_byte) and q.job_id < me.job_id)
          + (select coalesce(sum(j.delta), 0) from rhpool.queue_journal j
             where (j.priority > me.priority
                    or (j.priority = me.priority
                        and (rhpool.queue_instant(j.fifo_at), j.id_byte) < (me.instant, me.id_byte)))))::integer
    from (
      select r.priority, r.fifo_at, r.job_id, rhpool.queue_instant(r.fifo_at) as instant, rhpool.queue_id_byte(r.job_id) as id_byte
      from rhpool.runs r
      where r.job_table = queue_ahead.job_table and r.job_id = queue_ahead.job_id and r.status = 'queued'
    ) me), 0);
end
$$;
