// A pool whose server went away under it still closes. postgres.js's end()
// without a deadline never settles once the server closed a connection
// (porsager/postgres#1097); the soak saw a webhook server that met a PostgreSQL
// shutdown during its start exit with Node's code 13 and no message. Run with
// endPool's deadline removed, the end below never settles and this file fails.
import t from 'tap'
import { join } from 'node:path'
import { startCluster } from '../src/localdb/cluster.ts'
import { connectDatabase, endPool } from '../src/db/connect.ts'
import { tempFolder } from './helpers/temp-folder.ts'

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 20))
}

t.test('a pool closes after PostgreSQL shut down under its open connections', async (t) => {
  const folder = tempFolder(t, 'rhpool-pool-end-', { readableByOthers: true })
  const cluster = await startCluster({ dataDir: join(folder, 'pg'), fast: true })
  t.teardown(() => cluster.destroy())
  const sql = connectDatabase(cluster.url(), { max: 4 })
  await Promise.all([sql`select 1`, sql`select 2`, sql`select 3`])

  // A query in flight when the shutdown terminates its session, as a start's check was.
  const failed = sql`select pg_sleep(30)`.then(
    () => false,
    () => true
  )
  const probe = connectDatabase(cluster.url(), { max: 1 })
  await waitFor(async () => (await probe`select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep%'`)[0]!.n === 1)
  await endPool(probe)
  await cluster.stop('fast')
  t.ok(await failed, 'the query in flight fails')
  // Nothing else keeps this process alive: a promise that never settles ends the file with code 13.
  await endPool(sql, 1)
  t.pass('endPool settled')
})
