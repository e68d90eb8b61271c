// tap `after` hook: stops and deletes the shared test cluster.
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { postgresBinDir } from '../../src/localdb/cluster.ts'
import { clusterFile, type SharedClusterInfo } from '../helpers/cluster-file.ts'

if (existsSync(clusterFile)) {
  const info = JSON.parse(readFileSync(clusterFile, 'utf8')) as SharedClusterInfo
  const pgCtl = join(postgresBinDir(), 'pg_ctl')
  const asRoot = process.getuid?.() === 0
  const [command, args] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', pgCtl, '-D', info.dataDir, '-m', 'immediate', 'stop']]
    : [pgCtl, ['-D', info.dataDir, '-m', 'immediate', 'stop']]
  spawnSync(command, args, { stdio: 'ignore', cwd: '/' })
  rmSync(info.dataDir, { recursive: true, force: true })
  rmSync(clusterFile, { force: true })
}
