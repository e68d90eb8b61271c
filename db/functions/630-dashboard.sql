-- Everything the status page (GET /dashboard, polled from GET /dashboard/data)
-- shows, in one call: accounts with their slots, cooldowns and disabled
-- reasons, queue depth and oldest wait per tool, the most recent jobs, and what
-- each account has cost. Over rhpool.jobs (built in
-- 050-attach-job-tables.sql), rhpool.account_status (130-accounts.sql) and the
-- status view queue_status (600-status.sql), all created before it.
--
-- Account names only: no key, no key fingerprint. Jobs by tool, a short id,
-- status, account, age, error code and cost: no user ids, no inputs, no
-- outputs, no error messages.
--
-- PL/pgSQL for its plan, kept for the session (a SQL function's query is
-- planned at every call, which here cost more than running it); the page
-- polls it every second.
create or replace function rhpool.dashboard_data(recent integer default 15)
returns jsonb
language plpgsql
stable
set plan_cache_mode = force_generic_plan
as $$
begin
  return (
  -- The accounts and the queue are read once each (materialized) and the
  -- totals summed from them as pool_status sums its own; calling pool_status
  -- here read both again (and, from a CTE the planner inlined, once per total).
  with accounts as materialized (
    select * from rhpool.account_status
  ), queue as materialized (
    select * from rhpool.queue_status
  ), spent as (
    -- What RunningHub charged per account for the jobs it completed in the
    -- last 24 whole hours and this one, in money (coins are another unit:
    -- rhpool.account_costs has both): kept per hour (027-spend-by-hour.sql),
    -- never read from the day's job rows.
    select sp.account, sp.completed::integer as completed, sp.money as cost
    from rhpool.spent_since(now() - interval '24 hours') sp
  ), in_flight as (
    select r.job_table, count(*)::integer as held
    from rhpool.runs r
    where r.account is not null
    group by r.job_table
  ), latest as materialized (
    -- A constant limit (200, the most asked for), cut to `recent` below: the
    -- plan is generic, and with a limit it cannot see it would sort every job
    -- instead of reading each table's created_at index from the top.
    select j.tool, j.id, j.status, j.api_account, j.created_at, j.error_code, j.rh_cost
    from rhpool.jobs j
    order by j.created_at desc
    limit 200
  )
  select jsonb_build_object(
    'at', now(),
    'strategy', rhpool.setting('strategy'),
    'totalSlots', coalesce((select sum(a.max_slots) from accounts a where a.enabled and a.key_holders > 0), 0),
    'totalRunning', coalesce((select sum(a.running) from accounts a), 0),
    'totalQueued', coalesce((select sum(q.queued) from queue q), 0),
    'oldestQueuedSeconds', (select coalesce(max(q.oldest_wait_seconds), 0) from queue q),
    'totalCost', coalesce((select sum(sp.cost) from spent sp), 0),
    'accounts', coalesce((
      select jsonb_agg(jsonb_build_object(
        'name', a.name,
        -- slots: the effective limit (what can run); why it is lower than configured, beside it
        'slots', a.max_slots,
        'configuredSlots', a.configured_slots,
        'reportedLimit', a.reported_concurrency,
        'learnedLimit', a.learned_limit,
        'limitReason', a.limit_reason,
        'running', a.running,
        'available', a.available,
        'enabled', a.enabled,
        'disabledReason', a.disabled_reason,
        'keyHolders', a.key_holders,
        'unheldReason', a.unheld_reason,
        'cooldownReason', a.cooldown_reason,
        'cooldownSecondsLeft', case when a.cooldown_until is not null
                                    then greatest(ceil(extract(epoch from a.cooldown_until - now())), 0)::integer end,
        'remainMoney', a.remain_money,
        'completed', coalesce(sp.completed, 0),
        'cost', coalesce(sp.cost, 0)
      ) order by a.position, a.name)
      from accounts a
      left join spent sp on sp.account = a.name), '[]'::jsonb),
    'queue', coalesce((
      select jsonb_agg(jsonb_build_object(
        'tool', q.tool,
        'queued', q.queued,
        'inFlight', coalesce(f.held, 0),
        'oldestWaitSeconds', q.oldest_wait_seconds
      ) order by q.tool)
      from queue q
      left join in_flight f on f.job_table = q.job_table), '[]'::jsonb),
    'recent', coalesce((
      select jsonb_agg(jsonb_build_object(
        'tool', l.tool,
        'shortId', left(l.id::text, 8),
        'status', l.status,
        'account', l.api_account,
        'ageSeconds', greatest(floor(extract(epoch from now() - l.created_at)), 0)::integer,
        'errorCode', l.error_code,
        'cost', l.rh_cost
      ) order by l.created_at desc)
      from (select * from latest l order by l.created_at desc
            limit least(greatest(coalesce(dashboard_data.recent, 15), 0), 200)) l), '[]'::jsonb)
  )
  );
end
$$;
