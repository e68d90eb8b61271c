--! Previous: sha1:fd98bfd5dec0ecfb60f49ab7d39fee501bc06cd0
--! Hash: sha1:09fc783864806cdac328035b4c96cf287bd6bc05

-- Deliveries whose signature does not verify cost rhpool one counter row per
-- minute, not a row each: a forger must not be able to fill the database.
-- Only the first few of each hour are kept whole (body truncated) in
-- rhpool.webhook_deliveries for inspection; the rest are only counted here.
create table rhpool.webhook_rejections (
  bucket timestamptz not null,
  outcome text not null,
  deliveries bigint not null default 0,
  last_detail text,
  primary key (bucket, outcome)
);

-- A held ('unconfirmed') callback is claimed by one dispatcher at a time while
-- it asks RunningHub, and put off after an answer that settles nothing yet:
-- not before this time does any dispatcher look at it again.
alter table rhpool.webhook_deliveries add column confirm_after timestamptz;
