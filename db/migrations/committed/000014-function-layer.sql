--! Previous: sha1:1a46133d84762e99a6db9b385e03416a9c1f51ff
--! Hash: sha1:8b5150ddac65c481400c46ef3be39cefec568f6f

-- The release whose function layer (db/functions, db/cron) this database
-- runs, written by `rhpool migrate` in the layer's own transaction. An older
-- release reads it and refuses to put its functions over a newer schema
-- (src/db/database-version.ts); operators read it to know what runs.
create table rhpool.function_layer (
  -- One row: the layer is one thing, applied whole.
  id boolean primary key default true constraint function_layer_one_row check (id),
  release text not null,
  last_migration text not null,
  applied_at timestamptz not null default now()
);

comment on table rhpool.function_layer is
  'The rhpool release (package.json version) that last applied db/functions and db/cron, the newest committed migration it knew, and when.';
