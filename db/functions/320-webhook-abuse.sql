-- Deliveries nobody can vouch for (the URL's signature does not verify), kept
-- cheap: one counter row per minute and outcome, and a whole row in
-- rhpool.webhook_deliveries only for the first few of each hour, with the
-- body cut short. The webhook route also refuses a source that keeps sending
-- them (429, in memory) before it reaches this function.

-- The samples kept per hour, and how much of each body.
create or replace function rhpool.rejection_sample_limits(out per_hour integer, out body_chars integer)
language sql
immutable
as $$
  select 5, 256
$$;

create or replace function rhpool.record_unverified_delivery(outcome text, http_status integer, detail text, body text)
returns boolean
language plpgsql
volatile
as $$
declare
  minute timestamptz := date_trunc('minute', now());
  this_minute bigint;
  earlier bigint;
  limits record := rhpool.rejection_sample_limits();
begin
  -- The upsert serialises deliveries of the same minute on one row, so the
  -- count it returns decides the sample without a race.
  insert into rhpool.webhook_rejections as r (bucket, outcome, deliveries, last_detail)
  values (minute, record_unverified_delivery.outcome, 1, left(record_unverified_delivery.detail, 200))
  on conflict on constraint webhook_rejections_pkey do update set deliveries = r.deliveries + 1, last_detail = excluded.last_detail
  returning r.deliveries into this_minute;
  if this_minute = 1 then
    -- A new minute: old counters go, so the table stays as small as the history kept.
    delete from rhpool.webhook_rejections r
     where r.bucket < now() - make_interval(days => rhpool.setting('retention_days', '30')::integer);
  end if;
  select coalesce(sum(r.deliveries), 0)::bigint into earlier from rhpool.webhook_rejections r
   where r.outcome = record_unverified_delivery.outcome and r.bucket >= date_trunc('hour', now()) and r.bucket < minute;
  if earlier + this_minute > limits.per_hour then
    return false;
  end if;
  insert into rhpool.webhook_deliveries (outcome, http_status, detail, body)
  values (record_unverified_delivery.outcome, record_unverified_delivery.http_status,
          left(record_unverified_delivery.detail, 300), left(record_unverified_delivery.body, limits.body_chars));
  return true;
end
$$;

