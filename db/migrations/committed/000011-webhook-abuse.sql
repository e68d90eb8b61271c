--! Previous: sha1:92d193fe7a35825c798521084c3e3549dfc53ae8
--! Hash: sha1:5abb747f73b49650754c8c86ec370f5bae89816d

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
