// Property: whatever a client inserts into the four job tables (random statuses,
// priorities, missing or extra inputs, bad numbers, huge strings), the row is either
// accepted as valid or refused with an error that says what is wrong; and
// rhpool.queue always holds exactly the queued jobs, with their FIFO keys.
import fc from 'fast-check'
import t from 'tap'
import { freshDatabase, type Sql } from './helpers/db.ts'
import { jobTables, type JobTable } from './helpers/jobs.ts'

type Row = Record<string, unknown>

const statuses = ['pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running', 'completed', 'failed', 'cancelled']

const huge = fc.integer({ min: 10_000, max: 300_000 }).map((n) => 'x'.repeat(n))
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
  upscaler_jobs: { input_file_name: text, input_url: text, detail_denoise: numeric, prompt: text, resolution: integer, version: fc.oneof(fc.constantFrom('pro', 'standard', 'longe'), text) },
  pose_changer_jobs: { person_file_name: text, reference_file_name: text, person_image_url: text, reference_image_url: text },
  veste_ai_jobs: { person_file_name: text, clothing_file_name: text, person_image_url: text, clothing_image_url: text },
  video_upscaler_jobs: { input_file_name: text, video_url: text, video_width: integer, video_height: integer, video_duration_seconds: numeric },
}

function rowFor(table: JobTable): fc.Arbitrary<Row> {
  const columns = { ...common, ...inputs[table] }
  const known = fc.record(columns, { requiredKeys: [] })
  const extra = fc.dictionary(fc.constantFrom('bogus', 'nonexistent_column', 'Status', 'input'), text, { maxKeys: 1 })
  return fc.tuple(known, fc.oneof({ weight: 9, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: extra })).map(([a, b]) => ({ ...a, ...b }))
}

const insertCase = fc.constantFrom(...jobTables).chain((table) => rowFor(table).map((row) => ({ table, row })))

const updateCase = fc.record({
  pick: fc.nat(),
  change: fc.oneof(
    fc.record({ status }),
    fc.record({ priority: integer }),
    fc.record({ not_before: timestamp }),
    fc.record({ created_at: timestamp }),
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
  if (table === 'pose_changer_jobs' && ready && !(has('person_image_url', 'person_file_name') && has('reference_image_url', 'reference_file_name'))) return 'queued without both images'
  if (table === 'veste_ai_jobs' && ready && !(has('person_image_url', 'person_file_name') && has('clothing_image_url', 'clothing_file_name'))) return 'queued without both images'
  if (table === 'video_upscaler_jobs') {
    if (ready && !has('video_url', 'input_file_name')) return 'queued without input'
    if ((row.video_width !== null && Number(row.video_width) <= 0) || (row.video_height !== null && Number(row.video_height) <= 0)) return 'video size not positive'
    if (row.video_duration_seconds !== null && !(Number(row.video_duration_seconds) > 0)) return `video_duration_seconds ${row.video_duration_seconds}`
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
  if (columns.some((c) => new RegExp(`"${c}"|\\b${c}\\b`).test(text))) return 'names-field'
  if (error.code?.startsWith('22') && /type [a-z ]+|encoding|numeric|json|out of range/i.test(text)) return 'names-value-and-type'
  return null
}

async function queueOutOfStep(sql: Sql): Promise<unknown[]> {
  return await sql`
    with queued as (
      select 'upscaler_jobs' as job_table, id, priority, created_at, not_before from upscaler_jobs where status = 'queued'
      union all select 'pose_changer_jobs', id, priority, created_at, not_before from pose_changer_jobs where status = 'queued'
      union all select 'veste_ai_jobs', id, priority, created_at, not_before from veste_ai_jobs where status = 'queued'
      union all select 'video_upscaler_jobs', id, priority, created_at, not_before from video_upscaler_jobs where status = 'queued'
    )
    select coalesce(j.job_table, q.job_table) as job_table, coalesce(j.id, q.job_id) as id,
           case when q.job_id is null then 'queued job missing from rhpool.queue'
                when j.id is null then 'queue row for a job that is not queued'
                else format('queue keys (%s, %s, %s) differ from the job''s (%s, %s, %s)', q.priority, q.created_at, q.not_before, j.priority, j.created_at, j.not_before) end as problem
    from queued j full join rhpool.queue q on q.job_table = j.job_table and q.job_id = j.id
    where q.job_id is null or j.id is null
       or (q.priority, q.created_at, q.not_before) is distinct from (j.priority, j.created_at, j.not_before)
    limit 5`
}

t.test('random inserts and updates: accepted as valid or refused with a reason; the queue stays in step', async (t) => {
  const { sql } = await freshDatabase(t)
  const columnsOf = new Map<string, string[]>()
  for (const table of jobTables) {
    const rows = await sql`select column_name from information_schema.columns where table_schema = 'public' and table_name = ${table}`
    columnsOf.set(table, rows.map((r) => r.column_name as string))
  }
  const tally = { accepted: 0, refusedNamingField: 0, refusedByTypeConversion: 0, updatesAccepted: 0, updatesRefused: 0 }
  const conversionExamples = new Set<string>()
  const ids: Array<{ table: JobTable; id: string }> = []

  await fc.assert(
    fc.asyncProperty(fc.array(insertCase, { minLength: 1, maxLength: 4 }), fc.array(updateCase, { maxLength: 3 }), async (inserts, updates) => {
      for (const { table, row } of inserts) {
        try {
          const [stored] = await sql`insert into ${sql(table)} ${sql(row as Record<string, never>, Object.keys(row) as never)} returning *`
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
          const verdict = explains(refusal, table, columnsOf.get(table)!)
          if (!verdict) throw new Error(`${table}: refused without naming the field: [${refusal.code}] ${refusal.message} (row ${JSON.stringify(row).slice(0, 300)})`)
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
          await sql`update ${sql(table)} set ${sql(change as Record<string, never>, Object.keys(change) as never)} where id = ${id}`
          tally.updatesAccepted++
        } catch (error) {
          const refusal = error as Refusal
          if (!refusal.code) throw error
          if (!explains(refusal, table, columnsOf.get(table)!)) throw new Error(`${table}: update refused without naming the field: [${refusal.code}] ${refusal.message}`)
          tally.updatesRefused++
        }
      }
      const problems = await queueOutOfStep(sql)
      if (problems.length) throw new Error(`rhpool.queue out of step with the queued jobs: ${JSON.stringify(problems)}`)
    }),
    { numRuns: 250, seed: Number(process.env.RHPOOL_PROPERTY_SEED ?? 424242) }
  )
  t.pass(`inserts: ${tally.accepted} accepted, ${tally.refusedNamingField} refused naming the field or constraint, ${tally.refusedByTypeConversion} refused by Postgres's type conversion; updates: ${tally.updatesAccepted} accepted, ${tally.updatesRefused} refused`)
  t.ok(tally.accepted > 50 && tally.refusedNamingField > 50, 'the generators reach both sides')
  for (const example of conversionExamples) t.comment(`type conversion refusal (names the value and the type, not the column): ${example}`)
})
