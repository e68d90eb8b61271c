--! Previous: sha1:92d193fe7a35825c798521084c3e3549dfc53ae8
--! Hash: sha1:9f83e48826b4738a2c4e8dcf2e058b16a25115c1

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
