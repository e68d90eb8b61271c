// CPU time spent by this Node process and by the benchmark's PostgreSQL
// cluster, so a throughput figure can be split into "where did the work go".
// Linux only (/proc); elsewhere the PostgreSQL side reads as NaN.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

// USER_HZ: 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
const ticksPerSecond = 100

interface ProcStat {
  ppid: number
  /** utime + stime, in seconds. */
  own: number
  /** cutime + cstime: children already exited and reaped, in seconds. */
  reaped: number
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces: split after its closing parenthesis.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state): field n is fields[n - 3].
    const number = (n: number): number => Number(fields[n - 3])
    return { ppid: number(4), own: (number(14) + number(15)) / ticksPerSecond, reaped: (number(16) + number(17)) / ticksPerSecond }
  } catch {
    return undefined
  }
}

/**
 * Seconds of CPU used so far by the cluster whose data folder is `dataDir`:
 * the postmaster, its live children (backends, autovacuum, walwriter …) and
 * the children that already exited (counted in the postmaster's cutime).
 */
export function postgresCpuSeconds(dataDir: string): number {
  let postmaster: number
  try {
    postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
  } catch {
    return Number.NaN
  }
  const main = readStat(postmaster)
  if (!main) return Number.NaN
  let total = main.own + main.reaped
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readStat(Number(entry))
    if (stat?.ppid === postmaster) total += stat.own + stat.reaped
  }
  return total
}

export interface CpuSample {
  node: number
  postgres: number
  wall: number
}

/** A snapshot to subtract from a later one. */
export function sampleCpu(dataDir: string): CpuSample {
  const usage = process.cpuUsage()
  return { node: (usage.user + usage.system) / 1e6, postgres: postgresCpuSeconds(dataDir), wall: performance.now() / 1000 }
}

export interface CpuSpent {
  /** Seconds of CPU in this Node process (the benchmark, and whatever it runs in-process). */
  node: number
  /** Seconds of CPU in the PostgreSQL cluster. */
  postgres: number
  wallSeconds: number
}

export function cpuSince(before: CpuSample, dataDir: string): CpuSpent {
  const after = sampleCpu(dataDir)
  return { node: after.node - before.node, postgres: after.postgres - before.postgres, wallSeconds: after.wall - before.wall }
}
