--! Previous: sha1:92d193fe7a35825c798521084c3e3549dfc53ae8
--! Hash: sha1:fd98bfd5dec0ecfb60f49ab7d39fee501bc06cd0

-- The trust boundary: what a product's client (an end user's role under RLS)
-- may do in rhpool is held by rhpool_client; what the product's refund worker
-- may do (read terminal events, mark them processed) by rhpool_events. What
-- each holds is granted in db/functions/990-grants.sql, after every function
-- exists.
--
-- Roles belong to the cluster, not the database: another database on the same
-- cluster (or an earlier install) may have created them already.
do $role$
declare
  role_name text;
begin
  foreach role_name in array array['rhpool_client', 'rhpool_events'] loop
    begin
      if not exists (select 1 from pg_roles r where r.rolname = role_name) then
        execute format('create role %I nologin', role_name);
      end if;
    exception when duplicate_object or unique_violation then
      -- Created by a concurrent migration of another database of this cluster.
      null;
    end;
  end loop;
end
$role$;

-- Roles given what rhpool_client holds directly (rhpool.allow_client): NOINHERIT
-- roles such as Supabase's `authenticated` gain nothing from membership. The
-- function layer re-grants them after every migrate, so an upgrade that gives
-- rhpool_client a new function gives it to them too.
create table rhpool.allowed_roles (
  role_name text not null,
  -- Which rhpool role's rights it is given.
  grants text not null default 'rhpool_client'
    constraint allowed_roles_grants_is_client_or_events check (grants in ('rhpool_client', 'rhpool_events')),
  allowed_at timestamptz not null default now(),
  primary key (role_name, grants)
);

-- Closed to PUBLIC: every right in rhpool is granted by name (functions, which
-- PUBLIC may execute when created, are revoked after every migrate in
-- db/functions/990-grants.sql).
revoke all on schema rhpool from public;
