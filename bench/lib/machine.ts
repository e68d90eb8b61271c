// What a figure was measured on and under: the machine, the load average
// (other engineers' suites share this 2-core box), the commit.
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'

/** "1.23 / 2.34 / 3.45": the 1, 5 and 15 minute load averages. */
export function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' / ')
}

export function machineLine(): string {
  return `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
}

/** The repository's commit, with "+changes" when the work tree differs from it. */
export function commitLine(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
    return dirty ? `${head} (+ uncommitted changes in the work tree)` : head
  } catch {
    return 'unknown'
  }
}

/** Prints the header every benchmark starts with. */
export function printHeader(title: string, command: string): void {
  console.log(`${title} — ${new Date().toISOString()}`)
  console.log(`command: ${command}`)
  console.log(`machine: ${machineLine()}; repository at ${commitLine()}`)
  console.log(`load average at start: ${loadAverage()}`)
}
