// What `rhpool dev` and `rhpool demo` run against (never `rhpool start`, which
// takes the environment as it is). Everything the user configured is used as it
// is; what is missing gets a development default, said plainly as it is
// decided: no DATABASE_URL → a local PostgreSQL (see embedded.ts for where);
// no RunningHub key → the simulator with two accounts of 3 slots (nothing is
// paid for); no WEBHOOK_SECRET → a random one for this run. Migrates first.
import { randomBytes } from 'node:crypto'
import { migrate } from '../db/migrate.ts'
import { freePorts } from '../localdb/cluster.ts'
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../localdb/embedded.ts'
import type { Simulator } from '../../simulator/index.ts'

export interface Runtime {
  env: NodeJS.ProcessEnv
  notes: string[]
  simulator: Simulator | null
  database: EmbeddedDatabase | null
  stop(): Promise<void>
}

const hasKey = (env: NodeJS.ProcessEnv): boolean =>
  Object.entries(env).some(([name, value]) => /^RUNNINGHUB_API_KEY(_\d+)?$/.test(name) && value !== undefined && value.trim() !== '')

export async function prepareRuntime(
  base: NodeJS.ProcessEnv,
  options: { simulatorTaskMs?: Record<string, number>; defaultTaskMs?: number; announce?: (note: string) => void } = {}
): Promise<Runtime> {
  const env: NodeJS.ProcessEnv = { ...base }
  const notes: string[] = []
  // Said as soon as it is decided: the first lines a person reads tell them what is real.
  const say = (note: string) => {
    notes.push(note)
    options.announce?.(note)
  }
  let database: EmbeddedDatabase | null = null
  let simulator: Simulator | null = null

  if (!env.DATABASE_URL?.trim()) {
    database = await startEmbeddedDatabase(env)
    env.DATABASE_URL = database.url
    say(`DATABASE_URL is not set: using the embedded PostgreSQL at ${database.url} (data in ${database.dataDir})`)
  }

  if (!hasKey(env)) {
    const keys = ['sim-key-primary-0001', 'sim-key-second-0002']
    // Loaded only here: a production start never has the simulator in its process.
    const { startSimulator } = await import('../../simulator/index.ts')
    simulator = await startSimulator({
      accounts: keys.map((apiKey) => ({ apiKey, concurrency: 3 })),
      config: { taskDurationMs: options.defaultTaskMs ?? 2000, taskDurationByApp: options.simulatorTaskMs ?? {} },
    })
    env.RUNNINGHUB_API_KEY = keys[0]
    env.RUNNINGHUB_API_KEY_2 = keys[1]
    env.RUNNINGHUB_BASE_URL = simulator.url
    say(
      `no RUNNINGHUB_API_KEY: using the RunningHub SIMULATOR at ${simulator.url} with two accounts of 3 slots (no real task runs, nothing is paid)`
    )
  }
  await migrate(env.DATABASE_URL!)
  // Chosen together: two ports asked for one after the other can be the same one.
  const [publicPort, adminPort] = await freePorts(2)
  if (!env.PORT) env.PORT = String(publicPort)
  if (!env.ADMIN_PORT) env.ADMIN_PORT = String(adminPort)
  if (!env.WEBHOOK_SECRET) {
    env.WEBHOOK_SECRET = randomBytes(32).toString('hex')
    say('WEBHOOK_SECRET is not set: using a random one for this run (set it for anything RunningHub calls back across restarts)')
  }
  if (!env.PUBLIC_BASE_URL && simulator) env.PUBLIC_BASE_URL = `http://127.0.0.1:${env.PORT}`

  return {
    env,
    notes,
    simulator,
    database,
    async stop() {
      await simulator?.close()
      await database?.stop()
    },
  }
}
