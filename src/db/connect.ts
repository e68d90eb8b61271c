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
