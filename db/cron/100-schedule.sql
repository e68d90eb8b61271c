-- Installs the maintenance schedule and the claim round when pg_cron is installed in this database
-- (pg_cron serves the one database named by cron.database_name). pg_cron 1.4
-- (Debian 12) schedules by the minute; 1.5+ accepts seconds, and gets a
-- 10-second round. Without pg_cron the dispatcher runs the same function on
-- its own timer (and says so at start).
--
-- Migrations may run as the database's owner without superuser (Supabase's
-- postgres): it may not read cron.database_name (superuser-only while pg_cron
-- is loaded), create pg_cron, or use schema cron unless granted. Each of those
-- refusals leaves the schedule to the dispatcher instead of failing migrate.
do $schedule$
declare
  version text := (select extversion from pg_extension where extname = 'pg_cron');
  cron_database text;
  every text;
begin
  if version is null then
    begin
      cron_database := current_setting('cron.database_name', true);
    exception when insufficient_privilege then
      raise notice 'rhpool: pg_cron is not installed here and % may not read cron.database_name; the dispatcher runs maintenance', current_user;
      return;
    end;
    if exists (select 1 from pg_available_extensions where name = 'pg_cron') and cron_database = current_database() then
      begin
        create extension pg_cron;
      exception when insufficient_privilege then
        raise notice 'rhpool: % may not create pg_cron; the dispatcher runs maintenance', current_user;
        return;
      end;
      version := (select extversion from pg_extension where extname = 'pg_cron');
    else
      return;
    end if;
  end if;
  every := case when string_to_array(split_part(version, '-', 1), '.')::int[] >= array[1, 5] then '10 seconds' else '* * * * *' end;
  begin
    perform cron.schedule('rhpool-maintenance', every, 'select rhpool.run_maintenance()');
    -- Claims in the database, with no dispatcher awake: dispatchers holding
    -- the accounts' keys adopt and submit them (150-claim-account-slot.sql).
    perform cron.schedule('rhpool-claim-round', every, 'select rhpool.claim_round()');
  exception when insufficient_privilege then
    raise notice 'rhpool: % may not use pg_cron; the dispatcher runs maintenance', current_user;
  end;
end
$schedule$;
