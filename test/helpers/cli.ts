// Runs the rhpool CLI as a user would: a real process.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { projectRoot } from '../../src/db/migrate.ts'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

export function rhpool(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(projectRoot, 'bin', 'rhpool.js'), ...args], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '', RHPOOL_EMBEDDED_PORT: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => (stdout += String(c)))
    child.stderr.on('data', (c) => (stderr += String(c)))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`rhpool ${args.join(' ')} did not finish in ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
