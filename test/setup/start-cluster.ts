// tap `before` hook: one throwaway PostgreSQL cluster (pg_cron loaded) for the
// whole run, with a migrated template database each test file copies.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { startCluster } from '../../src/localdb/cluster.ts'
import { migrate } from '../../src/db/migrate.ts'
import { clusterFile, templateDatabase } from '../helpers/cluster-file.ts'

const dataDir = `/tmp/rhpool-test-${process.pid}-${Date.now()}`
const cluster = await startCluster({ dataDir, fast: true })
try {
  const url = await cluster.createDatabase(templateDatabase)
  await migrate(url)
} catch (error) {
  // The run stops here, and stop-cluster.ts never learns of this cluster: a schema that does
  // not migrate left a server running under /tmp after every such run. Stopping the server
  // breaks graphile-migrate's idle connection, whose 'error' event may end the process before
  // destroy() removes the folder: the exit handler removes it then.
  process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }))
  await cluster.destroy()
  throw error
}
mkdirSync(dirname(clusterFile), { recursive: true })
writeFileSync(clusterFile, JSON.stringify({ port: cluster.port, dataDir }))
