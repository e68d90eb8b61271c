-- What a finished RunningHub task left: its cost and its output. Read from
-- RunningHub's own figures only (never estimated); used by finish_job.

-- A task's cost, as RunningHub reported it, with the field it came from and
-- its unit. usage is RunningHub's usage object (strings or null), with the
-- v2 callback's taskUsageList entries under "taskUsageList".
--
-- Precedence (the first field, in this order, holding a figure above zero;
-- when every figure present is zero, the first figure present, so a free task
-- reads 0, not "unknown"):
--   1. usage.consumeMoney            money  RunningHub's documented charge
--                                           (null in every real sample so far)
--   2. usage.thirdPartyConsumeMoney  money  where the captured standard-model
--                                           task carried its cost ("0.14")
--   3. usage.consumeCoins            coins  what the production product read
--   4. sum of taskUsageList[].usage.consumeCoins
--                                    coins  the production product's fallback
-- Money is in the account's currency (accountStatus reports it per account;
-- a task's usage does not say). Fields are never added together: two fields
-- are two descriptions of one charge, not two charges. No figure: all null.
create or replace function rhpool.task_cost(usage jsonb, out amount numeric, out field text, out unit text)
language plpgsql
immutable
as $$
declare
  candidate record;
  first_seen record;
begin
  if usage is null or jsonb_typeof(usage) <> 'object' then
    return;
  end if;
  for candidate in
    select c.ord, c.name, c.kind, c.figure
    from (
      select 1 as ord, 'usage.consumeMoney' as name, 'money' as kind, usage ->> 'consumeMoney' as figure
      union all
      select 2, 'usage.thirdPartyConsumeMoney', 'money', usage ->> 'thirdPartyConsumeMoney'
      union all
      select 3, 'usage.consumeCoins', 'coins', usage ->> 'consumeCoins'
      union all
      select 4, 'usage.taskUsageList[].usage.consumeCoins', 'coins', (
        select sum((e.value -> 'usage' ->> 'consumeCoins')::numeric)::text
        from jsonb_array_elements(case when jsonb_typeof(usage -> 'taskUsageList') = 'array' then usage -> 'taskUsageList' else '[]'::jsonb end) e
        where e.value -> 'usage' ->> 'consumeCoins' ~ '^[0-9]+(\.[0-9]+)?$')
    ) c
    where c.figure ~ '^[0-9]+(\.[0-9]+)?$'
    order by c.ord
  loop
    if first_seen is null then
      first_seen := candidate;
    end if;
    if candidate.figure::numeric > 0 then
      amount := candidate.figure::numeric;
      field := candidate.name;
      unit := candidate.kind;
      return;
    end if;
  end loop;
  if first_seen is not null then
    amount := first_seen.figure::numeric;
    field := first_seen.name;
    unit := first_seen.kind;
  end if;
end
$$;

-- The URL of the result a tool produces, among every item RunningHub listed:
-- the first whose outputType (or, without one, the URL's extension) is of the
-- tool's output kind, else the first item with a URL. A video upscaler's task
-- can list a preview image beside its mp4.
-- PL/pgSQL, as the other functions on a job's path (020-job-rows.sql says why).
create or replace function rhpool.pick_output_url(outputs jsonb, output_kind text)
returns text
language plpgsql
immutable
as $$
begin
  return (
  with items as (
    select o.value ->> 'url' as url, o.ordinality as ord,
           lower(coalesce(nullif(o.value ->> 'outputType', ''), substring(o.value ->> 'url' from '\.([A-Za-z0-9]+)(?:\?.*)?$'))) as ext
    from jsonb_array_elements(case when jsonb_typeof(pick_output_url.outputs) = 'array' then pick_output_url.outputs else '[]'::jsonb end)
         with ordinality o(value, ordinality)
    where jsonb_typeof(o.value) = 'object' and coalesce(o.value ->> 'url', '') <> ''
  )
  select coalesce(
    (select i.url from items i
      where i.ext = any (case pick_output_url.output_kind
                           when 'video' then array['mp4', 'mov', 'webm', 'mkv', 'avi']
                           else array['png', 'jpg', 'jpeg', 'webp', 'bmp', 'tif', 'tiff'] end)
      order by i.ord limit 1),
    (select i.url from items i order by i.ord limit 1)));
end
$$;
