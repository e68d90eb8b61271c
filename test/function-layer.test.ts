// The function layer (db/functions, db/cron) is applied whole or not at all,
// in one transaction: what a release no longer defines is gone, a changed
// signature applies in one run, the product's objects are never dropped, and
// an older release refuses a database a newer one migrated (exit code 57).
import t from 'tap'
import { freshDatabase, type Sql } from './helpers/db.ts'
import { catalogShape, catalogSnapshot } from './helpers/catalog.ts'
import { dbFolderCopy } from './helpers/db-folder.ts'
import { firstVersionSchema } from './helpers/first-version.ts'
import { rhpool } from './helpers/cli.ts'
import { migrate } from '../src/db/migrate.ts'
import { NewerDatabaseError } from '../src/db/database-version.ts'
import { compareVersions, thisRelease } from '../src/db/release.ts'

const quiet = { log: () => {} }
const exists = async (sql: Sql, object: string) =>
  (object.includes('(')
    ? await sql`select to_regprocedure(${object}) is not null as ok`
    : await sql`select to_regclass(${object}) is not null as ok`)[0]!.ok as boolean

t.test('what a release no longer defines is gone after migrate; a changed return type or parameter list applies in one run', async (t) => {
  const pristine = await freshDatabase(t)
  const { sql, url } = await freshDatabase(t)
  // What an older release left: a function and a view since renamed, an
  // overload whose argument list changed, a trigger function with its trigger
  // on a job table, and functions whose result type or parameter names differ.
  await sql.unsafe(`
    create function rhpool.some_old_function() returns int language sql as 'select 1';
    create view rhpool.some_old_view as select rhpool.some_old_function() as n;
    create function rhpool.job_view(job_table text, job_id uuid, verbose boolean) returns jsonb language sql as 'select null::jsonb';
    create function rhpool.old_guard() returns trigger language plpgsql as 'begin return new; end';
    create trigger rhpool_old_guard before insert on public.upscaler_jobs for each row execute function rhpool.old_guard();
    drop function rhpool.pool_status();
    create function rhpool.pool_status() returns text language sql as $$ select 'old' $$;
    drop function rhpool.queue_position(text, uuid);
    create function rhpool.queue_position(tbl text, id uuid) returns integer language sql as 'select 0';
  `)

  const result = await migrate(url, quiet)

  for (const gone of ['rhpool.some_old_function()', 'rhpool.some_old_view', 'rhpool.job_view(text,uuid,boolean)', 'rhpool.old_guard()']) {
    t.notOk(await exists(sql, gone), `${gone} is gone`)
    t.ok(result.dropped.includes(gone), `${gone} is reported dropped`)
  }
  t.same(await sql`select tgname from pg_trigger where tgname = 'rhpool_old_guard'`, [], 'the old trigger went with its function')
  const [status] =
    await sql`select pg_get_function_result('rhpool.pool_status()'::regprocedure) as result, rhpool.pool_status() ->> 'totalMaxSlots' as slots`
  t.same(status, { result: 'jsonb', slots: '0' }, 'pool_status returns jsonb again')
  const [position] = await sql`select pg_get_function_identity_arguments('rhpool.queue_position(text,uuid)'::regprocedure) as args`
  t.equal(position!.args, 'job_table text, job_id uuid', 'queue_position has its parameter names again')
  t.same(
    await catalogShape(sql),
    await catalogShape(pristine.sql),
    'the same functions, views, triggers and grants as a database that never had the old ones'
  )
  t.same((await migrate(url, quiet)).dropped, [], 'a second migrate finds nothing left over')
})

t.test('the layer is atomic: a broken late file leaves the database exactly as before, and the error names the file', async (t) => {
  const { sql, url } = await freshDatabase(t)
  // Something the layer would drop: a rolled-back drop must leave it.
  await sql`create function rhpool.some_old_function() returns int language sql as 'select 1'`
  const before = await catalogSnapshot(sql)
  const broken = dbFolderCopy(t, {
    'cron/200-broken.sql': '-- the last file of the layer\nselect 1;\ncreate funtion rhpool.oops() returns int;\n',
  })
  await t.rejects(migrate(url, { ...quiet, dbFolder: broken }), {
    name: 'FunctionLayerError',
    message: /db\/cron\/200-broken\.sql, line 3: syntax error at or near "funtion"/,
  })
  t.same(await catalogSnapshot(sql), before, 'functions, views, triggers, grants, oids, row versions and records are as they were')
  t.ok(await exists(sql, 'rhpool.some_old_function()'), 'the leftover a complete layer would drop is still there')

  const runtime = dbFolderCopy(t, { 'functions/999-fails.sql': "do $$ begin raise exception 'no: %', 42; end $$;\n" })
  await t.rejects(
    migrate(url, { ...quiet, dbFolder: runtime }),
    { message: /db\/functions\/999-fails\.sql: no: 42/ },
    'an error without a position names the file too'
  )
  t.same(await catalogSnapshot(sql), before, 'still as it was')
})

t.test('objects defined inside a savepoint or an exception block count as defined by the release', async (t) => {
  const { sql, url } = await freshDatabase(t)
  const inBlock = dbFolderCopy(t, {
    'functions/985-in-a-block.sql': `
      do $block$ begin
        begin
          create or replace function rhpool.made_in_a_block() returns trigger language plpgsql as 'begin return null; end';
          create or replace trigger made_in_a_block after insert on rhpool.job_events for each statement execute function rhpool.made_in_a_block();
          create or replace function rhpool.helper_in_a_block() returns int language sql as 'select 7';
          create or replace view rhpool.view_in_a_block as select rhpool.helper_in_a_block() as n;
        exception when others then raise;
        end;
      end $block$;`,
  })
  for (const run of [1, 2]) {
    await migrate(url, { ...quiet, dbFolder: inBlock })
    for (const object of ['rhpool.made_in_a_block()', 'rhpool.helper_in_a_block()', 'rhpool.view_in_a_block']) {
      t.ok(await exists(sql, object), `migrate ${run}: ${object} is there`)
    }
    t.same(await sql`select n from rhpool.view_in_a_block`, [{ n: 7 }])
    t.equal(
      (await sql`select count(*)::int as n from pg_trigger where tgname = 'made_in_a_block'`)[0]!.n,
      1,
      `migrate ${run}: its trigger too`
    )
  }
  await migrate(url, quiet)
  for (const object of ['rhpool.made_in_a_block()', 'rhpool.helper_in_a_block()', 'rhpool.view_in_a_block']) {
    t.notOk(await exists(sql, object), `a release without the file: ${object} is gone`)
  }
})

t.test('an older release over a newer database is refused with a clear error, and nothing changes', async (t) => {
  const { sql, url } = await freshDatabase(t)
  const ours = thisRelease().version
  await sql`update rhpool.function_layer set release = '99.0.0', last_migration = '000099-from-the-future.sql'`
  const before = await catalogSnapshot(sql)
  const error = await migrate(url, quiet).then(
    () => null,
    (e: Error) => e
  )
  t.type(error, NewerDatabaseError)
  t.equal((error as NewerDatabaseError).exitCode, 57)
  t.match(
    error!.message,
    `rhpool ${ours} will not migrate this database: the database's function layer was applied by rhpool 99.0.0 (migrations up to 000099-from-the-future.sql`
  )
  t.match(error!.message, /newer than this release \(rhpool \d+\.\d+\.\d+, migrations up to \d{6}-[a-z-]+\.sql\)/)
  t.same(await catalogSnapshot(sql), before, 'nothing changed')

  const cli = await rhpool(['migrate'], { DATABASE_URL: url }, 60_000)
  t.equal(cli.code, 57, '`rhpool migrate` exits 57')
  t.match(cli.stderr, /rhpool: rhpool \S+ will not migrate this database: .* rhpool 99\.0\.0 .*Nothing was changed \(exit code 57\)/)
  t.same(await catalogSnapshot(sql), before, 'nothing changed by the CLI either')
})

t.test('releases are ordered as semver orders them', async (t) => {
  const order = ['0.1.0', '0.1.1', '0.2.0-rc.1', '0.2.0-rc.2', '0.2.0-rc.10', '0.2.0', '0.10.0', '1.0.0', '99.0.0']
  for (let i = 0; i + 1 < order.length; i++) {
    t.equal(compareVersions(order[i]!, order[i + 1]!), -1, `${order[i]} < ${order[i + 1]}`)
    t.equal(compareVersions(order[i + 1]!, order[i]!), 1)
  }
  t.equal(compareVersions('1.2.3+build.5', '1.2.3'), 0, 'build metadata does not count')
  t.equal(compareVersions('not a version', '1.0.0'), null)
})

t.test('a database with a committed migration this release does not have is refused before graphile-migrate sees it', async (t) => {
  const { sql, url } = await freshDatabase(t)
  const [last] = await sql`select hash from graphile_migrate.migrations order by filename desc limit 1`
  await sql`insert into graphile_migrate.migrations (hash, previous_hash, filename) values ('sha1:0000000000000000000000000000000000000000', ${last!.hash}, '999999.sql')`
  const before = await catalogSnapshot(sql)
  await t.rejects(migrate(url, quiet), {
    name: 'NewerDatabaseError',
    message: /the database has committed migration 999999\.sql, which this release \(rhpool .*\) does not have/,
  })
  t.same(await catalogSnapshot(sql), before, 'nothing changed')

  const other = await freshDatabase(t)
  // The newest row: no other row names it as its previous one.
  const [newest] = await other.sql`update graphile_migrate.migrations set hash = 'sha1:1111111111111111111111111111111111111111'
                                    where filename = (select max(filename) from graphile_migrate.migrations) returning filename`
  const mine = thisRelease().migrations.find((m) => m.filename === newest!.filename)!
  await t.rejects(
    migrate(other.url, quiet),
    {
      name: 'NewerDatabaseError',
      message:
        `committed migration ${mine.filename} has hash sha1:1111111111111111111111111111111111111111, but this release (rhpool ${thisRelease().version}, ` +
        `migrations up to ${mine.realFilename}) has ${mine.realFilename} with hash ${mine.hash}: the database was migrated from another history`,
    },
    'a migration of the same number from another history is refused too'
  )
})

t.test("the product's objects that depend on rhpool functions are never dropped", async (t) => {
  const { sql, url } = await freshDatabase(t)
  await sql.unsafe(`
    create view public.my_queue as select j.id, rhpool.queue_position('upscaler_jobs', j.id) as position from public.upscaler_jobs j;
    create view public.my_accounts as select name, running from rhpool.account_status;
    create policy visible_while_queued on public.upscaler_jobs using (rhpool.queue_position('upscaler_jobs', id) is not null);
  `)
  const product = async () => sql`select c.oid::int8, c.relname from pg_class c where c.relname in ('my_queue', 'my_accounts')
                                  union all select p.oid::int8, p.polname from pg_policy p where p.polname = 'visible_while_queued' order by 2`
  const objects = await product()
  const result = await migrate(url, quiet)
  await migrate(url, quiet)
  t.same(await product(), objects, "the product's views and policy are the same objects")
  t.ok(result.kept.includes('rhpool.queue_position(text,uuid)'), 'queue_position was redefined in place, not dropped')
  t.ok(result.kept.includes('rhpool.account_status'), 'so was the view the product reads')
  t.same(await sql`select * from public.my_accounts`, [], "the product's view still works")

  // An rhpool function this release no longer defines, still used by the product: refused, naming both.
  await sql.unsafe(`
    create function rhpool.some_old_function() returns int language sql as 'select 1';
    create view public.uses_old as select rhpool.some_old_function() as n;
  `)
  let before = await catalogSnapshot(sql)
  await t.rejects(migrate(url, quiet), {
    name: 'FunctionLayerError',
    message: /rhpool\.some_old_function\(\) is no longer defined by this release, but view public\.uses_old still depends on it/,
  })
  t.same(await catalogSnapshot(sql), before, 'nothing changed')
  t.same(await sql`select n from public.uses_old`, [{ n: 1 }], "the product's view is still there and works")
  await sql`drop view public.uses_old`

  // A function the product depends on whose signature the release changes: refused, naming the product's object.
  await sql.unsafe(`
    drop function rhpool.pool_status();
    create function rhpool.pool_status() returns text language sql as $$ select 'old' $$;
    create view public.status_text as select rhpool.pool_status() as s;
  `)
  before = await catalogSnapshot(sql)
  await t.rejects(migrate(url, quiet), {
    name: 'FunctionLayerError',
    message:
      /db\/functions\/600-status\.sql: cannot change return type of existing function.*; rhpool\.pool_status\(\) was not dropped and recreated because view public\.status_text depends on it$/,
  })
  t.same(await catalogSnapshot(sql), before, 'nothing changed')
})

t.test('a fresh database and ones upgraded from the first version have the same functions, views, triggers and grants', async (t) => {
  const fresh = await freshDatabase(t)
  const direct = await freshDatabase(t, { template: null })
  await direct.sql.unsafe(firstVersionSchema)
  await migrate(direct.url, quiet)
  // Through an earlier release first, whose apply_callback took ten arguments
  // (db/functions/140-callbacks.sql, now 300-callbacks.sql, before the maintenance commit): this
  // release's six-argument one is an overload, not a replacement.
  const earlier = dbFolderCopy(t, {
    'functions/301-earlier-callbacks.sql': `
      create or replace function rhpool.apply_callback(
        job_table text, job_id uuid, attempt integer, task_id text, status text,
        outputs jsonb, usage jsonb, error_code text, error_message text, body text
      ) returns text language plpgsql volatile as $$ begin return 'applied'; end $$;`,
  })
  const stepwise = await freshDatabase(t, { template: null })
  await stepwise.sql.unsafe(firstVersionSchema)
  await migrate(stepwise.url, { ...quiet, dbFolder: earlier })
  await migrate(stepwise.url, quiet)

  const shapeFresh = await catalogShape(fresh.sql)
  t.ok(
    shapeFresh.functions.length > 50 && shapeFresh.views.length >= 3 && shapeFresh.triggers.length >= 15,
    'the comparison covers the layer'
  )
  for (const [name, db] of [
    ['upgraded', direct],
    ['upgraded through an earlier release', stepwise],
  ] as const) {
    const shape = await catalogShape(db.sql)
    t.same(shape.functions, shapeFresh.functions, `${name}: functions (name, arguments, result, body, security definer, config)`)
    t.same(shape.views, shapeFresh.views, `${name}: views`)
    t.same(shape.triggers, shapeFresh.triggers, `${name}: triggers`)
    t.same(shape.grants, shapeFresh.grants, `${name}: grants on the schema, its tables and functions, and the job tables`)
    const [recorded] = await db.sql`select release, last_migration from rhpool.function_layer`
    t.same(
      recorded,
      { release: thisRelease().version, last_migration: thisRelease().migrations.at(-1)!.realFilename },
      `${name}: the release that applied the layer is recorded`
    )
  }
})
