// Where the shared test cluster (started once per `tap` run) is described.
import { join } from 'node:path'
import { projectRoot } from '../../src/db/migrate.ts'

export const clusterFile = join(projectRoot, '.tap', 'rhpool-test-cluster.json')
export const templateDatabase = 'rhpool_template'

export interface SharedClusterInfo {
  port: number
  dataDir: string
}
