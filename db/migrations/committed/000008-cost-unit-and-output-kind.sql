--! Previous: sha1:5614d8f9d833c1f1b6ce1d849675fc29e454337b
--! Hash: sha1:2e71cf81f5c5c41218eb4710a2ea87ec9cb5fdad

-- What RunningHub charged, and in what: a task's cost comes from one of
-- several usage fields (money or coins, see rhpool.task_cost), so the figure
-- alone cannot be summed or refunded. Each job row and its terminal event say
-- which field the figure came from and its unit.
--
-- Which result is the job's output depends on the tool: the video upscaler's
-- is its video, the others' an image (RunningHub can list a preview image
-- beside the video).
alter table rhpool.tools
  add column output_kind text not null default 'image'
    constraint tools_output_kind_is_image_or_video check (output_kind in ('image', 'video'));
update rhpool.tools set output_kind = 'video' where job_table = 'video_upscaler_jobs';

do $migrate$
declare
  job_table text;
begin
  for job_table in select t.job_table from rhpool.tools t order by t.job_table loop
    execute format($sql$
      alter table public.%1$I
        add column if not exists rh_cost_field text,
        add column if not exists rh_cost_unit text,
        add constraint %2$I check (rh_cost_unit is null or rh_cost_unit in ('money', 'coins'))
    $sql$, job_table, job_table || '_rh_cost_unit_is_money_or_coins');
    -- Until now rh_cost was read from usage.consumeMoney only.
    execute format($sql$
      update public.%1$I set rh_cost_field = 'usage.consumeMoney', rh_cost_unit = 'money' where rh_cost is not null
    $sql$, job_table);
  end loop;
end
$migrate$;

alter table rhpool.job_events
  add column rh_cost_field text,
  add column rh_cost_unit text;
update rhpool.job_events set rh_cost_field = 'usage.consumeMoney', rh_cost_unit = 'money' where rh_cost is not null;
