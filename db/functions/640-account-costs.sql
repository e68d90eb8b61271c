-- What each account cost, per unit: RunningHub's own figures (see
-- rhpool.task_cost for which field each came from), summed over the jobs
-- that finished with one, completed or failed (RunningHub charges machine time
-- either way), since a given time (all history by default). Money and coins
-- are never added together. Language sql over the rhpool.jobs view, built
-- earlier (050-attach-job-tables.sql). It reads every job row, whatever
-- since is: an operator's report, not a poll (the dashboard's cost is
-- rhpool.spend_by_hour's), and no index on completed_at, which would make the
-- end of every job write a new entry in each index of its table
-- (000020-heap-only-settle.sql).
create or replace function rhpool.account_costs(since timestamptz default null)
returns table (account text, unit text, jobs integer, cost numeric)
language sql
stable
as $$
  select j.api_account, j.rh_cost_unit, count(*)::integer, sum(j.rh_cost)
  from rhpool.jobs j
  where j.rh_cost is not null and j.rh_cost_unit is not null and j.api_account is not null
    and (account_costs.since is null or j.completed_at >= account_costs.since)
  group by j.api_account, j.rh_cost_unit
  order by j.api_account, j.rh_cost_unit
$$;
