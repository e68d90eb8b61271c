// Test databases: each test file gets its own database, copied from the
// migrated template in the shared cluster, so files run in parallel and never
// see each other's rows.
import { existsSync, readFileSync } from 'node:fs'
import postgres from 'postgres'
import { clusterFile, templateDatabase, type SharedClusterInfo } from './cluster-file.ts'

export type Sql = postgres.Sql

export interface TestDatabase {
  url: string
  sql: Sql
  name: string
}

interface Teardown {
  teardown(fn: () => unknown): void
}

let counter = 0

export function sharedCluster(): SharedClusterInfo {
  if (!existsSync(clusterFile)) {
    throw new Error(`no test cluster: run the tests with \`npm test\` (tap starts one), missing ${clusterFile}`)
  }
  return JSON.parse(readFileSync(clusterFile, 'utf8')) as SharedClusterInfo
}

export const clusterUrl = (database: string): string => `postgres://postgres@127.0.0.1:${sharedCluster().port}/${database}`

export function connect(url: string, options: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
  return postgres(url, { max: 4, onnotice: () => {}, ...options })
}

export async function freshDatabase(t: Teardown, options: { template?: string | null } = {}): Promise<TestDatabase> {
  const name = `t_${process.pid}_${Date.now()}_${counter++}`
  const admin = connect(clusterUrl('postgres'), { max: 1 })
  const template = options.template === undefined ? templateDatabase : options.template
  try {
    await admin.unsafe(`create database "${name}"${template ? ` template "${template}"` : ''}`)
  } finally {
    await admin.end()
  }
  const url = clusterUrl(name)
  const sql = connect(url, { max: 20 })
  t.teardown(() => sql.end({ timeout: 5 }))
  return { url, sql, name }
}
