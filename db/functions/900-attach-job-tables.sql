-- Attaches rhpool's triggers to a job table. Every table in rhpool.tools gets
-- them; a fifth tool is a table, a row in rhpool.tools and this call.
create or replace function rhpool.attach_job_table(job_table text)
returns void
language plpgsql
volatile
as $$
begin
  execute format('create or replace trigger rhpool_job_guard before insert or update on public.%I
                  for each row execute function rhpool.job_guard()', job_table);
  execute format('create or replace trigger rhpool_job_sync after insert or update of status, priority, not_before on public.%I
                  for each row execute function rhpool.job_sync()', job_table);
  execute format('create or replace trigger rhpool_job_forget after delete on public.%I
                  for each row execute function rhpool.job_forget()', job_table);
end
$$;

select rhpool.attach_job_table(t.job_table) from rhpool.tools t;
