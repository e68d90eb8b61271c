-- Every right in rhpool, granted by name (runs after every function exists).
--
-- rhpool_client: what a product's client needs, under its own RLS on the job
-- tables (the product grants those): the README's SQL interface. Functions it
-- calls that read rhpool's tables are SECURITY DEFINER and show counts or its
-- own rows only; no table or view of rhpool is granted to it.
-- rhpool_events: what the product's refund worker needs: the unprocessed
-- terminal events, and marking one processed (040-job-events.sql).
-- The service itself runs as the owner of schema rhpool and needs no grant.

-- Gives a role what rhpool_client (or rhpool_events) holds, directly: a
-- NOINHERIT role (Supabase's authenticated, service_role) gains nothing from
-- membership. Idempotent; remembered in rhpool.allowed_roles and granted
-- again after every migrate, so an upgrade's new rights reach it too.
create or replace function rhpool.allow_client(role_name text, grants text default 'rhpool_client')
returns void
language plpgsql
volatile
as $$
begin
  if not exists (select 1 from pg_catalog.pg_roles r where r.rolname = allow_client.role_name) then
    raise exception 'allow_client: no role named %', coalesce(quote_literal(role_name), 'NULL') using errcode = 'undefined_object';
  end if;
  if grants is null or grants not in ('rhpool_client', 'rhpool_events') then
    raise exception 'allow_client: grants must be rhpool_client or rhpool_events, not %', coalesce(quote_literal(grants), 'NULL')
      using errcode = 'invalid_parameter_value';
  end if;
  insert into rhpool.allowed_roles (role_name, grants) values (allow_client.role_name, allow_client.grants)
  on conflict on constraint allowed_roles_pkey do nothing;
  perform rhpool.grant_like(role_name, grants);
end
$$;

-- Grants role_name every right template (an rhpool role) holds in schema
-- rhpool: its usage of the schema and each function it may execute. Read
-- from the catalog, so the grants below are the one list.
create or replace function rhpool.grant_like(role_name text, template text)
returns void
language plpgsql
volatile
as $$
declare
  fn regprocedure;
begin
  execute format('grant usage on schema rhpool to %I', role_name);
  for fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p
    cross join lateral aclexplode(p.proacl) acl
    where p.pronamespace = 'rhpool'::regnamespace and acl.privilege_type = 'EXECUTE' and acl.grantee = template::regrole
    order by p.oid
  loop
    execute format('grant execute on function %s to %I', fn, role_name);
  end loop;
end
$$;

-- Closed to PUBLIC: functions are EXECUTE-able by PUBLIC when created, and a
-- client holds USAGE on the schema.
revoke all on schema rhpool from public;
revoke all on all functions in schema rhpool from public;
revoke all on all tables in schema rhpool from public;
revoke all on all sequences in schema rhpool from public;

grant usage on schema rhpool to rhpool_client, rhpool_events;
grant execute on function
  rhpool.pool_status(),
  rhpool.queue_position(text, uuid),
  rhpool.job_view(text, uuid),
  rhpool.cancel_job(text, uuid, text),
  rhpool.user_message(text, text),
  -- called by those as the caller
  rhpool.require_job_table(text, text),
  rhpool.queue_ahead(text, uuid)
to rhpool_client;
grant execute on function
  rhpool.unprocessed_events(integer),
  rhpool.mark_event_processed(bigint)
to rhpool_events;

select rhpool.grant_like(a.role_name, a.grants)
from rhpool.allowed_roles a
where exists (select 1 from pg_catalog.pg_roles r where r.rolname = a.role_name)
order by a.role_name, a.grants;
