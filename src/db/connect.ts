// The one place a postgres.js pool is made, so every process uses the same
// settings: notices dropped (rhpool's functions do not chat), numeric left as
// text (money stays exact), bigint as string (RunningHub task ids exceed 2^53).
import postgres from 'postgres'

export type Sql = postgres.Sql

export function connectDatabase(url: string, options: { max?: number; applicationName?: string } = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'rhpool' },
    idle_timeout: 60,
  })
}

/**
 * Closes a pool, always with a deadline. postgres.js's `end()` without one never
 * settles once the server has closed a connection under it (porsager/postgres#1097):
 * a start that met a PostgreSQL shutdown then exited with Node's code 13 and no
 * message. With a deadline, what is still open after it is destroyed.
 */
export function endPool(sql: Sql, seconds = 5): Promise<void> {
  return sql.end({ timeout: seconds })
}
