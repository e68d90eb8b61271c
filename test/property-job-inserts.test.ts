// Property: whatever a client inserts into the four job tables (random statuses,
// priorities, missing or extra inputs, bad numbers, huge strings), the row is either
// accepted as valid or refused with an error that says what is wrong; and
// rhpool.runs always holds exactly the unfinished jobs, in step with their rows.
import fc from 'fast-check'
import t from 'tap'
import { freshDatabase, type Sql } from './helpers/db.ts'
import { jobTables, type JobTable } from './helpers/jobs.ts'

type Row = Record<string, unknown>

const statuses = ['pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running', 'completed', 'failed', 'cancelled']

/** A huge string, kept as { huge: n } until it is sent, so a counterexample prints short. */
const huge = fc.integer({ min: 10_000, max: 300_000 }).map((n) => ({ huge: n }))
const isHuge = (v: unknown): v is { huge: number } => typeof v === 'object' && v !== null && 'huge' in v
const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: huge },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constant('nul\u0000byte') },
  { weight: 2, arbitrary: fc.constant(null) }
)
const integer = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: -2_000, max: 20_000 }) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom('1.5', 'abc', '', ' 7 ', '1e3', 'NaN', '99999999999999999999', '-0') },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) }
)
const numeric = fc.oneof(
  { weight: 4, arbitrary: fc.double({ min: -2, max: 2 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', '0.15', '1e400', 'abc', '') },
  { weight: 1, arbitrary: fc.constant(null) }
)
const timestamp = fc.oneof(
  { weight: 4, arbitrary: fc.date({ min: new Date('1900-01-01'), max: new Date('2300-01-01'), noInvalidDate: true }) },
  { weight: 1, arbitrary: fc.constantFrom('yesterday', 'not a date', 'infinity', '-infinity', '2024-13-45', 'now') },
  { weight: 1, arbitrary: fc.constant(null) }
)
const uuid = fc.oneof(fc.uuid(), fc.string({ maxLength: 40 }), fc.constant(null))
const json = fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ maxLength: 20 }), fc.constant(null))
const status = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('queued', 'pending') },
  { weight: 3, arbitrary: fc.constantFrom(...statuses, 'started', 'QUEUED', ' queued', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constant(null) }
)

/** Every column a client might write, by type, per table (rhpool's and the product's). */
const common: Record<string, fc.Arbitrary<unknown>> = {
  status,
  priority: integer,
  max_attempts: integer,
  attempts: integer,
  user_id: uuid,
  session_id: text,
  task_id: text,
  created_at: timestamp,
  not_before: timestamp,
  api_account: text,
  error_code: text,
  error_message: text,
  output_url: text,
  position: integer,
  rh_cost: numeric,
  job_payload: json,
}
const inputs: Record<JobTable, Record<string, fc.Arbitrary<unknown>>> = {
  upscaler_jobs: {
    input_file_name: text,
    input_url: text,
    detail_denoise: numeric,
    prompt: text,
    resolution: integer,
    version: fc.oneof(fc.constantFrom('pro', 'standard', 'longe'), text),
  },
  pose_changer_jobs: { person_file_name: text, reference_file_name: text, person_image_url: text, reference_image_url: text },
  veste_ai_jobs: { person_file_name: text, clothing_file_name: text, person_image_url: text, clothing_image_url: text },
  video_upscaler_jobs: {
    input_file_name: text,
    video_url: text,
    video_width: integer,
    video_height: integer,
    video_duration_seconds: numeric,
  },
}

/** Valid rows a product would write. */
const validInputs: Record<JobTable, fc.Arbitrary<Row>> = {
  upscaler_jobs: fc.record(
    {
      input_file_name: fc.constantFrom('in.png', 'api/abc.png'),
      detail_denoise: fc.double({ min: 0, max: 1, noNaN: true }),
      resolution: fc.integer({ min: 64, max: 16384 }),
      version: fc.constantFrom('pro', 'standard', 'longe'),
      prompt: fc.string({ maxLength: 20 }),
    },
    { requiredKeys: ['input_file_name'] }
  ),
  pose_changer_jobs: fc.record({ person_file_name: fc.constant('p.png'), reference_image_url: fc.constant('https://cdn.example/r.png') }),
  veste_ai_jobs: fc.record({ person_image_url: fc.constant('https://cdn.example/p.png'), clothing_file_name: fc.constant('c.png') }),
  video_upscaler_jobs: fc.record(
    {
      input_file_name: fc.constant('in.mp4'),
      video_width: fc.integer({ min: 1, max: 8000 }),
      video_height: fc.integer({ min: 1, max: 8000 }),
      video_duration_seconds: fc.double({ min: 0.1, max: 3600, noNaN: true }),
    },
    { requiredKeys: ['input_file_name'] }
  ),
}
const validCommon = fc.record(
  {
    status: fc.constantFrom('queued', 'pending'),
    priority: fc.integer({ min: -1000, max: 1000 }),
    user_id: fc.uuid(),
    max_attempts: fc.integer({ min: 1, max: 100 }),
    created_at: fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
  },
  { requiredKeys: ['status'] }
)
const remove = Symbol('remove')
const extraColumns = ['bogus', 'nonexistent_column', 'Status', 'input']

/** A valid row with 0 to 3 mutations: a column set to a wild value, a column removed, or an unknown column added. */
function rowFor(table: JobTable): fc.Arbitrary<Row> {
  const wild: Record<string, fc.Arbitrary<unknown>> = {
    ...common,
    ...inputs[table],
    ...Object.fromEntries(extraColumns.map((c) => [c, text])),
  }
  const mutation = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...Object.keys(wild)).chain((name) => wild[name]!.map((value) => [name, value] as const)) },
    { weight: 1, arbitrary: fc.constantFrom(...Object.keys(inputs[table]), 'status').map((name) => [name, remove] as const) }
  )
  return fc.tuple(validCommon, validInputs[table], fc.array(mutation, { maxLength: 3 })).map(([base, own, mutations]) => {
    const row: Row = { ...base, ...own }
    for (const [name, value] of mutations) {
      if (value === remove) delete row[name]
      else row[name] = value
    }
    return row
  })
}

const insertCase = fc.constantFrom(...jobTables).chain((table) => rowFor(table).map((row) => ({ table, row })))

const updateCase = fc.record({
  pick: fc.nat(),
  change: fc.oneof(
    fc.record({ status }),
    fc.record({ priority: integer }),
    fc.record({ not_before: timestamp }),
    fc.record({ status: fc.constantFrom('queued', 'pending', 'cancelled'), priority: fc.integer({ min: -1000, max: 1000 }) })
  ),
})

/** What an accepted row must look like: the rules, written independently of the schema. */
function invalidAccepted(table: JobTable, row: Row): string | null {
  const between = (v: unknown, lo: number, hi: number) => v === null || (Number(v) >= lo && Number(v) <= hi)
  if (!['pending', 'queued'].includes(row.status as string)) return `accepted with status ${row.status}`
  if (row.api_account !== null) return 'accepted with an api_account (a new job has no account)'
  if (!between(row.priority, -1000, 1000)) return `priority ${row.priority}`
  if (!between(row.max_attempts, 1, 100)) return `max_attempts ${row.max_attempts}`
  if (Number(row.attempts) < 0) return `attempts ${row.attempts}`
  const ready = row.status === 'queued'
  const has = (...names: string[]) => names.some((n) => row[n] !== null && row[n] !== undefined)
  if (table === 'upscaler_jobs') {
    if (ready && !has('input_url', 'input_file_name')) return 'queued without input'
    if (!between(row.detail_denoise, 0, 1)) return `detail_denoise ${row.detail_denoise}`
    if (!between(row.resolution, 64, 16384)) return `resolution ${row.resolution}`
    if (row.version !== null && !['pro', 'standard', 'longe'].includes(row.version as string)) return `version ${row.version}`
  }
  if (
    table === 'pose_changer_jobs' &&
    ready &&
    !(has('person_image_url', 'person_file_name') && has('reference_image_url', 'reference_file_name'))
  )
    return 'queued without both images'
  if (
    table === 'veste_ai_jobs' &&
    ready &&
    !(has('person_image_url', 'person_file_name') && has('clothing_image_url', 'clothing_file_name'))
  )
    return 'queued without both images'
  if (table === 'video_upscaler_jobs') {
    if (ready && !has('video_url', 'input_file_name')) return 'queued without input'
    if ((row.video_width !== null && Number(row.video_width) <= 0) || (row.video_height !== null && Number(row.video_height) <= 0))
      return 'video size not positive'
    if (row.video_duration_seconds !== null && !(Number(row.video_duration_seconds) > 0))
      return `video_duration_seconds ${row.video_duration_seconds}`
  }
  return null
}

interface Refusal {
  code: string
  message: string
  detail?: string
  column_name?: string
  constraint_name?: string
}

/**
 * Does the refusal say what is wrong? rhpool's own refusals (constraints, the state
 * machine, unknown columns, duplicates) must name the column or the constraint.
 * Postgres's input conversion (class 22: "abc" for an integer, a NUL byte) runs before
 * any rhpool code and names the value and the type instead; those are counted apart.
 */
function explains(error: Refusal, table: string, columns: string[]): 'names-field' | 'names-value-and-type' | null {
  const text = `${error.message} ${error.detail ?? ''}`
  if (error.column_name || error.constraint_name) return 'names-field'
  if (text.includes(table + '_') || text.includes(table + '.')) return 'names-field'
  if (columns.some((c) => text.includes(`"${c}"`) || new RegExp(`\\b${c.replace(/[^a-z0-9_]/gi, '')}\\b`).test(text))) return 'names-field'
  if (
    (error.code?.startsWith('22') || error.code === '54000') &&
    /type [a-z ]+|encoding|numeric|json|out of range|null character/i.test(text)
  )
    return 'names-value-and-type'
  return null
}

/**
 * A value as an untyped SQL literal: what Postgres gets from a client that sends text
 * parameters of unknown type (postgres.js would otherwise convert some values itself,
 * e.g. turn 'yesterday' for a timestamptz into a client-side RangeError).
 */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (isHuge(value)) return `repeat('x', ${value.huge})`
  const text = value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value)
  // A NUL cannot travel inside a query text; chr(0) asks the server for one.
  return text
    .split('\u0000')
    .map((part) => `'${part.replace(/'/g, "''")}'`)
    .join(' || chr(0) || ')
}
const ident = (name: string) => `"${name.replace(/"/g, '""')}"`

async function queueOutOfStep(sql: Sql): Promise<unknown[]> {
  return [
    ...(await sql`
    with unfinished as (
      select (select t.job_table from rhpool.tools t where t.relation = j.tableoid) as job_table,
             j.id, j.status, j.priority, j.not_before, j.api_account, j.attempts
      from rhpool.job_rows j
      where j.status not in ('completed', 'failed', 'cancelled')
    )
    select coalesce(j.job_table, r.job_table) as job_table, coalesce(j.id, r.job_id) as id,
           case when r.job_id is null then 'unfinished job without a run'
                when j.id is null then 'run of a job that is finished or gone'
                else format('run (%s, %s, %s, %s, %s) differs from the job (%s, %s, %s, %s, %s)',
                            r.status, r.priority, r.not_before, r.account, r.attempts,
                            j.status, j.priority, j.not_before, j.api_account, j.attempts) end as problem
    from unfinished j full join rhpool.runs r on r.job_table = j.job_table and r.job_id = j.id
    where r.job_id is null or j.id is null
       or (r.status, r.priority, r.not_before, r.account, r.attempts) is distinct from (j.status, j.priority, j.not_before, j.api_account, j.attempts)
    limit 5`),
  ]
}

// The job's place in the queue is rhpool's (rhpool.runs.fifo_at, the time it
// was queued), not the row's created_at: editing that column moves nothing.
t.test("editing a queued job's created_at does not move its place", async (t) => {
  const { sql } = await freshDatabase(t)
  const [first] = await sql`insert into upscaler_jobs (input_file_name, status) values ('in.png', 'queued') returning id`
  const [second] = await sql`insert into upscaler_jobs (input_file_name, status) values ('in.png', 'queued') returning id`
  await sql`update upscaler_jobs set created_at = '2001-01-01T00:00:00Z' where id = ${second!.id}`
  t.same(await queueOutOfStep(sql), [], 'the runs are in step with the rows')
  const [place] = await sql`select rhpool.queue_position('upscaler_jobs', ${second!.id}) as p`
  t.equal(place!.p, 2, 'the second job is still second')
  t.not(first!.id, second!.id)
})

// Found by the property below (seed 3): numeric NaN is greater than every number in
// Postgres, so "> 0" lets it through.
t.test('a NaN duration is refused like any other non-positive one', async (t) => {
  const { sql } = await freshDatabase(t)
  await t.rejects(
    sql.unsafe(`insert into video_upscaler_jobs (input_file_name, status, video_duration_seconds) values ('in.mp4', 'queued', 'NaN')`),
    /video_duration_seconds/,
    'video_duration_seconds NaN'
  )
  await t.rejects(
    sql.unsafe(`insert into upscaler_jobs (input_file_name, status, detail_denoise) values ('in.png', 'queued', 'NaN')`),
    /detail_denoise/,
    'detail_denoise NaN (already refused: "between" is false for NaN)'
  )
})

t.test('random inserts and updates: accepted as valid or refused with a reason; the runs stay in step', async (t) => {
  const { sql } = await freshDatabase(t)
  const columnsOf = new Map<string, string[]>()
  for (const table of jobTables) {
    const rows = await sql`select column_name from information_schema.columns where table_schema = 'public' and table_name = ${table}`
    columnsOf.set(
      table,
      rows.map((r) => r.column_name as string)
    )
  }
  const tally = { accepted: 0, refusedNamingField: 0, refusedByTypeConversion: 0, updatesAccepted: 0, updatesRefused: 0 }
  const conversionExamples = new Set<string>()
  const ids: Array<{ table: JobTable; id: string }> = []

  await fc.assert(
    fc.asyncProperty(
      fc.array(insertCase, { minLength: 1, maxLength: 4 }),
      fc.array(updateCase, { maxLength: 3 }),
      async (inserts, updates) => {
        for (const { table, row } of inserts) {
          try {
            const columns = Object.keys(row)
            const statement = columns.length
              ? `insert into ${ident(table)} (${columns.map(ident).join(', ')}) values (${columns.map((c) => literal(row[c])).join(', ')}) returning *`
              : `insert into ${ident(table)} default values returning *`
            const [stored] = await sql.unsafe(statement)
            const wrong = invalidAccepted(table, stored as Row)
            if (wrong) throw new Error(`${table}: accepted an invalid row (${wrong}): ${JSON.stringify(row).slice(0, 300)}`)
            tally.accepted++
            ids.push({ table, id: stored!.id as string })
          } catch (error) {
            if (!(error instanceof Error) || !('code' in error) || (error as { name?: string }).name !== 'PostgresError') {
              if (error instanceof Error && error.message.includes('accepted an invalid row')) throw error
              throw new Error(`${table}: not a database refusal: ${String(error)}`)
            }
            const refusal = error as unknown as Refusal
            const verdict = explains(refusal, table, [...columnsOf.get(table)!, ...Object.keys(row)])
            if (!verdict)
              throw new Error(
                `${table}: refused without naming the field: [${refusal.code}] ${refusal.message} (row ${JSON.stringify(row).slice(0, 300)})`
              )
            if (verdict === 'names-field') tally.refusedNamingField++
            else {
              tally.refusedByTypeConversion++
              if (conversionExamples.size < 4) conversionExamples.add(`[${refusal.code}] ${refusal.message}`)
            }
          }
        }
        for (const { pick, change } of updates) {
          if (ids.length === 0) break
          const { table, id } = ids[pick % ids.length]!
          try {
            const sets = Object.entries(change)
              .map(([c, v]) => `${ident(c)} = ${literal(v)}`)
              .join(', ')
            await sql.unsafe(`update ${ident(table)} set ${sets} where id = $1`, [id])
            tally.updatesAccepted++
          } catch (error) {
            const refusal = error as Refusal
            if (!refusal.code) throw error
            if (!explains(refusal, table, [...columnsOf.get(table)!, ...Object.keys(change)]))
              throw new Error(`${table}: update refused without naming the field: [${refusal.code}] ${refusal.message}`)
            tally.updatesRefused++
          }
        }
        const problems = await queueOutOfStep(sql)
        if (problems.length) throw new Error(`rhpool.runs out of step with the jobs: ${JSON.stringify(problems)}`)
      }
    ),
    { numRuns: 600, seed: Number(process.env.RHPOOL_PROPERTY_SEED ?? 424242) }
  )
  t.pass(
    `inserts: ${tally.accepted} accepted, ${tally.refusedNamingField} refused naming the field or constraint, ${tally.refusedByTypeConversion} refused by Postgres's type conversion; updates: ${tally.updatesAccepted} accepted, ${tally.updatesRefused} refused`
  )
  t.ok(tally.accepted > 50 && tally.refusedNamingField > 50, 'the generators reach both sides')
  for (const example of conversionExamples) t.comment(`type conversion refusal (names the value and the type, not the column): ${example}`)
})
