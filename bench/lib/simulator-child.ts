// The RunningHub simulator in a process of its own, for the latency benchmarks
// (bench/lib/simulator-process.ts starts it). RunningHub runs on other machines:
// sharing rhpool's process would charge its timers, callbacks and garbage
// collection to rhpool's event loop, which is the very thing those benchmarks time.
// Speaks over the IPC channel only: one "ready" message with the URL, then one
// answer per request, and it exits when the channel closes.
import { startSimulator, type SimulatorOptions } from '../../simulator/index.ts'

export type SimulatorRequest = { id: number; ask: 'counts' | 'ledger' | 'close' }

if (!process.send) {
  process.stderr.write('simulator-child.ts runs only under bench/lib/simulator-process.ts (it needs an IPC channel)\n')
  process.exit(2)
}
const send = (message: unknown) => process.send!(message)
const options = JSON.parse(process.argv[2] ?? '{}') as SimulatorOptions
const simulator = await startSimulator(options)

process.on('message', async (request: SimulatorRequest) => {
  const { ledger } = simulator
  switch (request.ask) {
    case 'counts': {
      const tasks = ledger.tasks
      send({ id: request.id, submissions: ledger.submissions.length, endedTasks: tasks.filter((task) => task.endedAt !== null).length })
      return
    }
    case 'ledger':
      send({ id: request.id, submissions: ledger.submissions, tasks: ledger.tasks, callbacks: ledger.callbacks })
      return
    case 'close':
      await simulator.close()
      send({ id: request.id })
      process.disconnect()
      return
  }
})
process.on('disconnect', () => void simulator.close().then(() => process.exit(0)))
send({ ready: simulator.url })
