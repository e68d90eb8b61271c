// The rhpool command line (commander): run the service or the demo, inspect
// and control the pool, run the simulator alone. Every command has --help;
// a bad argument gets a message naming it and exit code 2; a database that a
// newer release migrated, exit code 57 (migrate, start, dev, demo).
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { ConfigError } from '../config/index.ts'
import { NewerDatabaseError } from '../db/database-version.ts'
import { migrate } from '../db/migrate.ts'
import { runService } from '../run-service.ts'
import { cancelJob, showAccounts, showJobs, showStatus } from './commands.ts'
import { inspectionDatabase, UsageError } from './database.ts'
// demo.ts and runtime.ts (which loads the simulator) and simulator/ itself are imported inside
// their commands only: `rhpool start` never loads them (test/start-imports.test.ts).

const positiveInteger = (name: string, max: number) => (value: string) => {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`)
  return n
}

async function withDatabase(work: (sql: Awaited<ReturnType<typeof inspectionDatabase>>) => Promise<void>): Promise<void> {
  const sql = await inspectionDatabase()
  try {
    await work(sql)
  } finally {
    await sql.end({ timeout: 2 })
  }
}

export function buildProgram(): Command {
  const program = new Command('rhpool')
    .description('A Postgres-native scheduler for AI jobs on a pool of rate-limited RunningHub accounts')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()

  program
    .command('migrate')
    .description(
      'apply the schema to DATABASE_URL: new migrations, then the functions and pg_cron schedule in one transaction (exit 57: a newer release migrated it)'
    )
    .action(async () => {
      const url = process.env.DATABASE_URL?.trim()
      if (!url) throw new UsageError('DATABASE_URL is required for `rhpool migrate` (`rhpool start` sets up its embedded database itself)')
      await migrate(url)
    })

  program
    .command('start')
    .description('run the dispatcher and the HTTP server, configured from the environment only (production: nothing is filled in)')
    .action(async () => {
      await runService(process.env)
    })

  program
    .command('dev')
    .description(
      'like start, but fills in what is missing for development: embedded PostgreSQL, the RunningHub simulator, a random webhook secret'
    )
    .action(async () => {
      const { prepareRuntime } = await import('./runtime.ts')
      const runtime = await prepareRuntime(process.env, { announce: (note) => process.stderr.write(`rhpool dev: ${note}\n`) })
      try {
        await runService(runtime.env)
      } finally {
        await runtime.stop()
      }
    })

  program
    .command('demo')
    .description('run rhpool end to end with a sample workload and a live view, then a summary')
    .option('--jobs <n>', 'jobs in the sample workload', positiveInteger('--jobs', 10000), 24)
    .option('--speed <n>', 'divide task times by this', positiveInteger('--speed', 1000), 1)
    .action(async (options: { jobs: number; speed: number }) => {
      const { runDemo } = await import('./demo.ts')
      await runDemo(options)
    })

  program
    .command('status')
    .description('the pool at a glance: slots per account, queue per tool')
    .option('--json', "print the plan's JSON")
    .option('--watch', 'refresh every second until Ctrl-C')
    .action(async (options: { json?: boolean; watch?: boolean }) => withDatabase((sql) => showStatus(sql, options)))

  program
    .command('accounts')
    .description('accounts with their slots, state and key fingerprints (never keys)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => withDatabase((sql) => showAccounts(sql, options)))

  program
    .command('jobs')
    .description('recent jobs, newest first')
    .option('--status <status>', 'only jobs in this state')
    .option('--tool <tool>', 'only this tool (upscaler, pose_changer, veste_ai, video_upscaler)')
    .option('--user <id>', 'only this user')
    .option('--limit <n>', 'how many (default 50)')
    .option('--json', 'print JSON')
    .action(async (options) => withDatabase((sql) => showJobs(sql, options)))

  program
    .command('cancel')
    .description("cancel a job: at once when queued, at RunningHub (with its account's key) when running")
    .argument('<tool>', 'tool or job table, e.g. upscaler or upscaler_jobs')
    .argument('<id>', 'job id (uuid)')
    .action(async (tool: string, id: string) => withDatabase((sql) => cancelJob(sql, tool, id)))

  program
    .command('simulate')
    .description('run the RunningHub simulator alone (see --help of simulator/main.ts)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]')
    .action(async () => {
      const at = process.argv.indexOf('simulate')
      process.argv.splice(2, at - 1)
      await import('../../simulator/main.ts')
    })

  return program
}

export async function runCli(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode === 0 ? 0 : 2)
    if (error instanceof NewerDatabaseError) {
      // Its own code, as graphile-worker's 57: a deploy script can tell "run the newer release" from a failure.
      process.stderr.write(`rhpool: ${error.message}\n`)
      process.exit(error.exitCode)
    }
    if (error instanceof UsageError || error instanceof ConfigError) {
      process.stderr.write(`rhpool: ${error.message}\n`)
      process.exit(2)
    }
    process.stderr.write(`rhpool: ${(error as Error).message}\n`)
    process.exit(1)
  }
}
