// Where the shared test cluster (started once per `tap` run) is described.
import { join } from 'node:path'
import { projectRoot } from '../../src/db/migrate.ts'

// One file per tap run, keyed by the tap runner's pid (the parent of both the
// `before` hook and every test file): two runs in one checkout never share or
// stop each other's cluster.
export const clusterFile = join(projectRoot, '.tap', `rhpool-test-cluster-${process.ppid}.json`)
export const templateDatabase = 'rhpool_template'

export interface SharedClusterInfo {
  port: number
  dataDir: string
}
