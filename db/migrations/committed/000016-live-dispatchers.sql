--! Previous: sha1:a199d15e19279bdb0b3eb1a86500b3ef93df6235
--! Hash: sha1:d2d51ee4f0adda3865479b7d8df6e2dc43e12ae8

-- The live dispatchers, found without visiting the dead ones. A dispatcher
-- that stops or is killed stays in rhpool.dispatchers for an hour (its row is
-- what dispatcher_status shows), and every restart is a new holder, so a pool
-- that restarts often keeps hundreds of them; a claim asks, for each account
-- it looks at, which live dispatcher holds its key (live_key_holders), and
-- went through every holder that ever declared that account: 181 of them made
-- one claim read ~3,000 buffers in a soak (bench/README.md).
create index dispatchers_live_until on rhpool.dispatchers (live_until);
