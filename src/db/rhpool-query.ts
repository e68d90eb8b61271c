// The two shapes every rhpool call comes back in: one value (`select
// rhpool.f(...) as value`) or a set of rows (`select * from rhpool.f(...)`).
// The casts from postgres.js's untyped rows live here and in the rhpool-*.ts
// modules only. Types as connect.ts configures them: bigint and numeric
// arrive as strings, timestamptz as Date, json/jsonb parsed.
import type { Sql } from './connect.ts'

type Rows = PromiseLike<ReadonlyArray<Record<string, unknown>>>

/** The `value` column of the one row a scalar call returns; null when SQL returned null. */
export async function value<T>(query: Rows): Promise<T | null> {
  const [row] = await query
  return (row?.value ?? null) as T | null
}

/** A call returning void (or a result nobody reads): run for its effect. */
export async function run(query: Rows): Promise<void> {
  await query
}

/** The rows of a set-returning call, typed as its `returns table (...)` says. */
export async function rows<T>(query: Rows): Promise<T[]> {
  return [...(await query)] as unknown as T[]
}

/** A jsonb argument (postgres.js's json helper, typed loosely on purpose: the SQL function checks the shape). */
export function json(sql: Sql, data: unknown): ReturnType<Sql['json']> {
  return sql.json(data as never)
}

/** A batch function's rows (ord is 1-based; they come in job order) back in the order the items were given. */
export function inItemOrder<V>(answers: Array<{ ord: number; value: V }>, count: number, what: string): V[] {
  return rowsInItemOrder(answers, count, what).map((answer) => answer.value)
}

/** inItemOrder's rows whole, for a batch whose answer has more than one column. */
export function rowsInItemOrder<R extends { ord: number }>(answers: R[], count: number, what: string): R[] {
  if (answers.length !== count) throw new Error(`a batch of ${count} ${what} came back with ${answers.length} rows`)
  const ordered = new Array<R>(count)
  for (const answer of answers) ordered[answer.ord - 1] = answer
  return ordered
}
