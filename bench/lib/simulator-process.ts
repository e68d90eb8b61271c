// Starts the RunningHub simulator in a child process (bench/lib/simulator-child.ts)
// and reads its ledger over IPC. Used where a benchmark times rhpool's own event
// loop (bench/pipeline.ts): in production RunningHub's work happens elsewhere.
import { fork, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import type { SimulatorOptions } from '../../simulator/index.ts'
import type { CallbackAttempt, SubmissionRecord, TaskRecord } from '../../simulator/types.ts'
import type { SimulatorRequest } from './simulator-child.ts'

export interface SimulatorLedger {
  submissions: SubmissionRecord[]
  tasks: TaskRecord[]
  callbacks: CallbackAttempt[]
}

export interface SimulatorProcess {
  readonly url: string
  /** How many tasks were submitted and how many have ended, without copying the ledger across. */
  counts(): Promise<{ submissions: number; endedTasks: number }>
  ledger(): Promise<SimulatorLedger>
  close(): Promise<void>
}

export async function startSimulatorProcess(options: SimulatorOptions): Promise<SimulatorProcess> {
  const child = fork(join(import.meta.dirname, 'simulator-child.ts'), [JSON.stringify(options)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`the simulator process exited with code ${code} before it listened`)))
    child.once('message', (message: { ready?: string }) => {
      if (typeof message.ready === 'string') resolve(message.ready)
      else reject(new Error(`the simulator process sent ${JSON.stringify(message)} before it was ready`))
    })
  })
  const waiting = new Map<number, { resolve: (answer: never) => void; reject: (error: Error) => void }>()
  let nextId = 1
  child.on('message', (answer: { id: number }) => {
    waiting.get(answer.id)?.resolve(answer as never)
    waiting.delete(answer.id)
  })
  child.on('exit', (code) => {
    for (const { reject } of waiting.values()) reject(new Error(`the simulator process exited (code ${code}) before it answered`))
    waiting.clear()
  })
  const ask = <T>(what: SimulatorRequest['ask']): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve: resolve as (answer: never) => void, reject })
      child.send({ id, ask: what } satisfies SimulatorRequest)
    })
  let closing: Promise<void> | null = null
  return {
    url,
    counts: () => ask('counts'),
    ledger: () => ask('ledger'),
    close: () => (closing ??= closeChild(child, () => ask('close'))),
  }
}

async function closeChild(child: ChildProcess, askClose: () => Promise<unknown>): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await askClose()
  await exited
}
