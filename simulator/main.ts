// Runs the simulator on its own, for manual testing and for rhpool processes started
// against it:  npx tsx simulator/main.ts --port 8099 --keys key1,key2 --concurrency 3 --task-ms 2000
import { parseArgs } from 'node:util'
import { startSimulator } from './index.ts'

function fail(message: string): never {
  process.stderr.write(`simulator: ${message}\n`)
  process.exit(2)
}

function integer(name: string, value: string | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min) fail(`--${name} must be an integer >= ${min}, got "${value}"`)
  return parsed
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8099' },
    host: { type: 'string', default: '127.0.0.1' },
    keys: { type: 'string' },
    concurrency: { type: 'string' },
    'task-ms': { type: 'string' },
    balance: { type: 'string', default: '100.00' },
    'callback-shape': { type: 'string', default: 'v2' },
    seed: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
  strict: true,
})

if (values.help) {
  process.stdout.write(
    'usage: tsx simulator/main.ts [--port 8099] [--keys k1,k2] [--concurrency 3] [--task-ms 50]\n' +
      '                                [--balance 100.00] [--callback-shape v2|classic] [--seed 1]\n'
  )
  process.exit(0)
}

const keys = (values.keys ?? '')
  .split(',')
  .map((k) => k.trim())
  .filter(Boolean)
if (keys.length === 0) fail('--keys is required: a comma-separated list of API keys to accept')
const shape = values['callback-shape']
if (shape !== 'v2' && shape !== 'classic') fail(`--callback-shape must be v2 or classic, got "${shape}"`)
if (Number.isNaN(Number(values.balance))) fail(`--balance must be an amount, got "${values.balance}"`)

const concurrency = integer('concurrency', values.concurrency, 3, 1)
const simulator = await startSimulator({
  host: values.host,
  port: integer('port', values.port, 8099, 0),
  seed: integer('seed', values.seed, 1, 0),
  config: { taskDurationMs: integer('task-ms', values['task-ms'], 50, 0), callbackShape: shape },
  accounts: keys.map((apiKey) => ({ apiKey, concurrency, balance: values.balance })),
})

process.stdout.write(`RunningHub simulator listening on ${simulator.url}\n`)
for (const account of simulator.accounts()) {
  process.stdout.write(`  account ${account.apiKey}  concurrency ${account.concurrency}  balance ${account.balance}\n`)
}

let stopping = false
const stop = (signal: string) => {
  if (stopping) return
  stopping = true
  process.stdout.write(`${signal}: stopping\n`)
  simulator.close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`simulator: close failed: ${String(error)}\n`)
      process.exit(1)
    }
  )
}
process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGTERM', () => stop('SIGTERM'))
