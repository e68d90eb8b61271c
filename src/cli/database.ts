// The database the inspection commands (status, accounts, jobs, cancel) read:
// DATABASE_URL, else the embedded server if it is running.
import { connectDatabase, type Sql } from '../db/connect.ts'
import { runningEmbeddedUrl } from '../localdb/embedded.ts'

export class UsageError extends Error {
  override name = 'UsageError'
}

export async function inspectionDatabase(env: NodeJS.ProcessEnv = process.env): Promise<Sql> {
  const url = env.DATABASE_URL?.trim() || (await runningEmbeddedUrl(env))
  if (!url) {
    throw new UsageError('no database: set DATABASE_URL, or start rhpool (`rhpool start` or `rhpool demo`) so its embedded database runs')
  }
  return connectDatabase(url, { max: 2, applicationName: 'rhpool-cli' })
}
