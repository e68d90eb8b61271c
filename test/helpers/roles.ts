// Clients as a product sets them up: a role under RLS on the job tables,
// either an ordinary INHERIT role granted rhpool_client, or Supabase's API
// roles as its init script makes them (NOINHERIT; PostgREST logs in as
// authenticator and runs `set role authenticated` with the user's id in
// request.jwt.claim.sub).
//
// Roles belong to the whole test cluster, which test files share: they are
// created once, whoever comes first, and never dropped.
import { randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { connect, sharedCluster, type Sql } from './db.ts'
import { jobTables, readyInputs, type JobTable } from './jobs.ts'

/** Creates a role unless it exists (another test file may be creating it at this moment). */
export async function ensureRole(sql: Sql, name: string, options: string): Promise<void> {
  try {
    await sql.unsafe(`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = '${name}') then create role "${name}" ${options}; end if;
      end $$`)
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code !== '42710' && code !== '23505') throw error
  }
}

/** auth.uid() as Supabase defines it, in this database. */
export async function createAuthSchema(sql: Sql, roles: string[]): Promise<void> {
  await sql.unsafe(`
    create schema if not exists auth;
    create or replace function auth.uid() returns uuid language sql stable as $$
      select nullif(coalesce(current_setting('request.jwt.claim.sub', true),
                             (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')), '')::uuid
    $$;
    grant usage on schema auth to ${roles.map((r) => `"${r}"`).join(', ')};
  `)
}

/** The product's grants and RLS on the four job tables: each user sees and writes only its own rows. */
export async function ownRowsOnly(sql: Sql, role: string): Promise<void> {
  for (const table of jobTables) {
    await sql.unsafe(`
      grant select, insert, update, delete on public.${table} to "${role}";
      alter table public.${table} enable row level security;
      create policy "${role}_own_rows" on public.${table} for all to "${role}"
        using (user_id = auth.uid()) with check (user_id = auth.uid());
    `)
  }
}

export interface Client {
  /** How this client was set up, for test names. */
  kind: string
  /** Runs fn in a transaction as the given user (its jwt sub), rolled back on error. */
  as<T>(userId: string, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T>
  end(): Promise<void>
}

/** An ordinary INHERIT role, granted rhpool_client. */
export async function inheritClient(sql: Sql, url: string): Promise<Client> {
  const role = 'rhpool_test_app_user'
  await ensureRole(sql, role, 'nologin inherit')
  await sql.unsafe(`grant rhpool_client to "${role}"`)
  await createAuthSchema(sql, [role])
  await ownRowsOnly(sql, role)
  const session = connect(url, { max: 2 })
  return {
    kind: 'an INHERIT role granted rhpool_client',
    as: (userId, fn) =>
      session.begin(async (tx) => {
        await tx.unsafe(`set local role "${role}"`)
        await tx`select set_config('request.jwt.claim.sub', ${userId}, true)`
        return await fn(tx)
      }) as Promise<never>,
    end: () => session.end({ timeout: 5 }),
  }
}

/** Supabase's API roles (cluster-wide; created by a superuser, as Supabase's init script does). */
export async function supabaseRoles(admin: Sql): Promise<void> {
  await ensureRole(admin, 'anon', 'nologin noinherit')
  await ensureRole(admin, 'authenticated', 'nologin noinherit')
  await ensureRole(admin, 'service_role', 'nologin noinherit bypassrls')
  await ensureRole(admin, 'authenticator', 'login noinherit')
  await admin.unsafe('grant anon, authenticated, service_role to authenticator')
}

/**
 * Supabase's roles as its init script makes them, allowed with
 * rhpool.allow_client('authenticated'). sql is the database's owner (or a
 * superuser); admin creates the roles.
 */
export async function supabaseClient(sql: Sql, database: string, admin: Sql = sql): Promise<Client> {
  await supabaseRoles(admin)
  await createAuthSchema(sql, ['anon', 'authenticated', 'service_role'])
  await ownRowsOnly(sql, 'authenticated')
  await sql`select rhpool.allow_client('authenticated')`
  const session = postgres(`postgres://authenticator@127.0.0.1:${sharedCluster().port}/${database}`, { max: 2, onnotice: () => {} })
  return {
    kind: "Supabase's authenticated (NOINHERIT, via authenticator), allowed",
    as: (userId, fn) =>
      session.begin(async (tx) => {
        // What PostgREST does for each request.
        await tx`set local role authenticated`
        await tx`select set_config('request.jwt.claim.sub', ${userId}, true)`
        await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: userId, role: 'authenticated' })}, true)`
        return await fn(tx)
      }) as Promise<never>,
    end: () => session.end({ timeout: 5 }),
  }
}

export const newUser = (): string => randomUUID()

/** A client's insert of a ready job of its own. */
export async function clientInsert(
  tx: postgres.TransactionSql,
  table: JobTable,
  userId: string,
  extra: Record<string, unknown> = {}
): Promise<string> {
  const row = { ...readyInputs[table], user_id: userId, status: 'queued', ...extra }
  const [inserted] = await tx`insert into ${tx(table)} ${tx(row)} returning id`
  return inserted!.id as string
}
