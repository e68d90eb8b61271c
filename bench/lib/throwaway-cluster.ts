// The benchmark's own PostgreSQL cluster: created under /tmp, fast mode (fsync
// off: the figures measure rhpool's SQL, not the disk), and always destroyed —
// on success, on error and on Ctrl-C — so a run never leaves a server behind.
import { rmSync } from 'node:fs'
import { startCluster, type Cluster, type ClusterOptions } from '../../src/localdb/cluster.ts'

export interface ThrowawayCluster {
  cluster: Cluster
  dataDir: string
}

const exitCodeOf: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 }

/**
 * Runs `body` against a fresh cluster and destroys the cluster afterwards,
 * whatever happens. A signal stops the run at once: the cluster is destroyed
 * (which also breaks the queries in flight) and the process exits.
 */
export async function withThrowawayCluster<T>(
  label: string,
  body: (cluster: Cluster) => Promise<T>,
  extra: Pick<ClusterOptions, 'preloadLibraries' | 'settings'> = {}
): Promise<T> {
  const dataDir = `/tmp/rhpool-${label}-${process.pid}-${Date.now()}`
  const starting = startCluster({ dataDir, fast: true, ...extra })
  let destroyed: Promise<void> | undefined

  // Idempotent: a signal can arrive while the normal path is already cleaning up.
  const destroy = (): Promise<void> => {
    destroyed ??= (async () => {
      const cluster = await starting.catch(() => undefined)
      if (cluster) await cluster.destroy()
      else rmSync(dataDir, { recursive: true, force: true })
    })()
    return destroyed
  }

  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    console.error(`\n${signal}: destroying the benchmark cluster at ${dataDir} ...`)
    void destroy().finally(() => process.exit(exitCodeOf[signal]))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  // If the process dies while destroy() is under way (an 'error' event of some
  // library's idle connection when the server stops is enough), the folder of
  // the already-stopped cluster is still removed.
  const onExit = (): void => {
    if (destroyed) rmSync(dataDir, { recursive: true, force: true })
  }
  process.on('exit', onExit)

  try {
    return await body(await starting)
  } finally {
    await destroy()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('exit', onExit)
  }
}
