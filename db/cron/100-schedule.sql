-- Installs the maintenance schedule when pg_cron is installed in this database
-- (pg_cron serves the one database named by cron.database_name). pg_cron 1.4
-- (Debian 12) schedules by the minute; 1.5+ accepts seconds, and gets a
-- 10-second round. Without pg_cron the dispatcher runs the same function on
-- its own timer (and says so at start).
do $schedule$
declare
  version text := (select extversion from pg_extension where extname = 'pg_cron');
  every text;
begin
  if version is null then
    if exists (select 1 from pg_available_extensions where name = 'pg_cron')
       and current_setting('cron.database_name', true) = current_database() then
      create extension pg_cron;
      version := (select extversion from pg_extension where extname = 'pg_cron');
    else
      return;
    end if;
  end if;
  every := case when string_to_array(split_part(version, '-', 1), '.')::int[] >= array[1, 5] then '10 seconds' else '* * * * *' end;
  perform cron.schedule('rhpool-maintenance', every, 'select rhpool.run_maintenance()');
end
$schedule$;
