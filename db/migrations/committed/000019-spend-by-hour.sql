--! Previous: sha1:7ab75e5b2ab519b7d8c10b01cac93f240b4c8e0a
--! Hash: sha1:ecc8e5c16019c25f69ade1a7500cde27245e90be

-- What each account's completed jobs cost, kept per hour beside the jobs
-- (db/functions/027-spend-by-hour.sql), so the dashboard never reads the
-- day's job rows.
--
-- Until now the dashboard (polled every second by each viewer) summed the jobs
-- that finished in the last 24 hours, read row by row through each job
-- table's completed_at index: its cost grew with the day's throughput (12 ms
-- for ~12k jobs finished in a day in bench/scale.ts; a busy day's 100k would
-- cost ~100 ms a poll). Now:
--
--   rhpool.spend_journal  one row per job completed (its account, the hour it
--                         completed in, its cost in money), appended by the
--                         transaction that completes it; never updated;
--   rhpool.spend_by_hour  the journal summed per account and hour, folded in
--                         (and deleted from the journal) by one transaction at
--                         a time, with the queue's counts (fold_queue_journal).

create table rhpool.spend_by_hour (
  account text not null,
  hour timestamptz not null
    constraint spend_by_hour_whole_hour check (hour = date_trunc('hour', hour)),
  completed bigint not null,
  -- RunningHub's figure in money (coins are another unit: rhpool.account_costs has both)
  money numeric not null,
  constraint spend_by_hour_pkey primary key (account, hour)
);
create index spend_by_hour_by_hour on rhpool.spend_by_hour (hour);
comment on table rhpool.spend_by_hour is
  'Jobs completed and their cost in money per account and hour: rhpool.spend_journal folded in (db/functions/027-spend-by-hour.sql). What was spent is these plus the journal, read together.';

create table rhpool.spend_journal (
  account text not null,
  hour timestamptz not null,
  money numeric not null
) with (autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_scale_factor = 0,
        autovacuum_vacuum_insert_threshold = 2000, autovacuum_vacuum_insert_scale_factor = 0);
comment on table rhpool.spend_journal is
  'One row per job completed, not yet folded into rhpool.spend_by_hour (db/functions/027-spend-by-hour.sql).';

-- The last day's completed jobs, from the job tables as they are now (the
-- dashboard reads the last 24 whole hours and the current one).
do $backfill$
declare
  relation regclass;
begin
  for relation in select t.relation from rhpool.tools t loop
    execute format($sql$
      insert into rhpool.spend_by_hour as s (account, hour, completed, money)
      select j.api_account, date_trunc('hour', j.completed_at), count(*),
             coalesce(sum(j.rh_cost) filter (where j.rh_cost_unit = 'money'), 0)
      from %s j
      where j.status = 'completed' and j.api_account is not null
        and j.completed_at >= date_trunc('hour', now() - interval '24 hours')
      group by 1, 2
      on conflict on constraint spend_by_hour_pkey
      do update set completed = s.completed + excluded.completed, money = s.money + excluded.money$sql$, relation);
  end loop;
end
$backfill$;
