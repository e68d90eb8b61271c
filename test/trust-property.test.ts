// Property: any sequence of a client's operations (updates of any columns with
// any values, status moves, inserts, deletes, cancel_job, job_view and
// queue_position, on its own jobs and on another user's) lands no forged
// write: after every step, another user's jobs are exactly as they were, a
// client's own jobs differ only in the product's columns, pending → queued, or
// a cancellation rhpool made, jobs in flight keep their status, account and
// slot, new rows carry none of rhpool's values, and the queue holds exactly
// the queued jobs with their own keys.
import fc from 'fast-check'
import t from 'tap'
import { freshDatabase, type Sql } from './helpers/db.ts'
import { claim, insertJob, runClaimed, setAccounts } from './helpers/jobs.ts'
import { clientInsert, inheritClient, newUser } from './helpers/roles.ts'

const owned = [
  'api_account',
  'task_id',
  'attempts',
  'max_attempts',
  'not_before',
  'claimed_at',
  'submitted_at',
  'started_at',
  'completed_at',
  'outputs',
  'output_url',
  'rh_usage',
  'rh_cost',
  'rh_cost_field',
  'rh_cost_unit',
  'error_code',
  'error_message',
  'cancel_requested_at',
  'waited_in_queue',
  'queue_wait_seconds',
  'id',
  'created_at',
  'priority',
]
const product = ['input_url', 'prompt', 'session_id', 'detail_denoise', 'version']
const statuses = ['pending', 'queued', 'claimed', 'submitting', 'outcome_unknown', 'running', 'completed', 'failed', 'cancelled']
const values: Record<string, fc.Arbitrary<unknown>> = {
  api_account: fc.constantFrom('primary', null),
  task_id: fc.constantFrom('1900000000000000777', null),
  attempts: fc.nat({ max: 3 }),
  max_attempts: fc.integer({ min: 1, max: 100 }),
  not_before: fc.constantFrom(new Date('2030-01-01'), null),
  claimed_at: fc.constant(new Date()),
  submitted_at: fc.constant(new Date()),
  started_at: fc.constant(new Date()),
  completed_at: fc.constant(new Date()),
  outputs: fc.constantFrom('[{"url": "https://forged/out.png"}]', null),
  rh_usage: fc.constantFrom('{"consumeMoney": 0}', null),
  output_url: fc.constant('https://forged/out.png'),
  rh_cost: fc.constantFrom(0, 100),
  rh_cost_field: fc.constant('usage.consumeMoney'),
  rh_cost_unit: fc.constantFrom('money', 'coins'),
  error_code: fc.constant('FORGED'),
  error_message: fc.constant('forged'),
  cancel_requested_at: fc.constantFrom(new Date(), null),
  waited_in_queue: fc.boolean(),
  queue_wait_seconds: fc.nat({ max: 10 }),
  id: fc.uuid(),
  created_at: fc.constant(new Date('2000-01-01')),
  priority: fc.integer({ min: -1000, max: 1000 }),
  status: fc.constantFrom(...statuses),
  input_url: fc.constant('https://in/x.png'),
  prompt: fc.string({ maxLength: 5 }),
  session_id: fc.constant('s'),
  detail_denoise: fc.constantFrom(0.2, 0.9),
  version: fc.constantFrom('pro', 'standard'),
}
const columnSet = (columns: string[]) =>
  fc
    .uniqueArray(fc.constantFrom(...columns), { minLength: 1, maxLength: 4 })
    .chain((cs) => fc.record(Object.fromEntries(cs.map((c) => [c, values[c]!]))) as fc.Arbitrary<Record<string, unknown>>)

type Op =
  | { op: 'update'; job: number; set: Record<string, unknown> }
  | { op: 'insert'; set: Record<string, unknown> }
  | { op: 'delete' | 'cancel' | 'view' | 'position'; job: number }
const job = fc.nat({ max: 20 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('update' as const), job, set: columnSet([...owned, ...product, 'status', 'status', 'status']) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('insert' as const), set: columnSet([...owned, ...product, 'status']) }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constantFrom('delete' as const, 'cancel' as const, 'view' as const, 'position' as const), job }),
  }
)

const all = (sql: Sql) => sql`select * from upscaler_jobs order by id`
const inFlight = ['claimed', 'submitting', 'outcome_unknown', 'running']

t.test('no sequence of client operations lands a forged write', async (t) => {
  const db = await freshDatabase(t)
  const { sql } = db
  const client = await inheritClient(sql, db.url)
  t.teardown(() => client.end())
  await setAccounts(sql, [{ name: 'primary', slots: 2 }])
  const me = newUser()
  const other = newUser()
  // Client statements that succeeded, and those refused: the property means
  // something only if both happen.
  let landed = 0
  let refused = 0

  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 12 }), async (ops) => {
      await sql`truncate upscaler_jobs, rhpool.runs, rhpool.job_events`
      // Both users' jobs in every kind of state, made by rhpool.
      for (const user of [me, other]) {
        await insertJob(sql, 'upscaler_jobs', { userId: user, createdAt: new Date('2026-01-01') })
        const [c] = await claim(sql, 1)
        await runClaimed(sql, c!, `19000000000000${user === me ? '1' : '2'}0001`)
        await insertJob(sql, 'upscaler_jobs', { userId: user, status: 'pending' })
        await insertJob(sql, 'upscaler_jobs', { userId: user })
        const done = await insertJob(sql, 'upscaler_jobs', { userId: user })
        await sql`select rhpool.cancel_job('upscaler_jobs', ${done})`
      }
      for (const op of ops) {
        const before = await all(sql)
        const target = 'job' in op ? before[op.job % before.length] : undefined
        await client
          .as(me, async (tx) => {
            if (op.op === 'update') await tx`update upscaler_jobs set ${tx(op.set)} where id = ${target!.id}`
            else if (op.op === 'insert') await clientInsert(tx, 'upscaler_jobs', me, op.set)
            else if (op.op === 'delete') await tx`delete from upscaler_jobs where id = ${target!.id}`
            else if (op.op === 'cancel') await tx`select rhpool.cancel_job('upscaler_jobs', ${target!.id})`
            else if (op.op === 'view') {
              const [{ v }] = (await tx`select rhpool.job_view('upscaler_jobs', ${target!.id}) as v`) as unknown as [{ v: unknown }]
              if (target!.user_id !== me && v !== null) throw new Error(`job_view showed another user's job ${target!.id}`)
            } else {
              const [{ p }] = (await tx`select rhpool.queue_position('upscaler_jobs', ${target!.id}) as p`) as unknown as [{ p: unknown }]
              if (target!.user_id !== me && p !== null) throw new Error(`queue_position placed another user's job ${target!.id}`)
            }
          })
          .then(
            () => landed++,
            (error: Error) => {
              if (/showed|placed/.test(error.message)) throw error
              refused++
            }
          )

        const after = await all(sql)
        const byId = new Map(after.map((r) => [r.id as string, r]))
        for (const old of before) {
          const now = byId.get(old.id as string)
          if (old.user_id !== me) {
            if (JSON.stringify(now) !== JSON.stringify(old))
              throw new Error(`another user's job changed: ${JSON.stringify(old)} → ${JSON.stringify(now)}`)
            continue
          }
          if (!now) {
            if (inFlight.includes(old.status as string)) throw new Error(`a job in flight was deleted: ${old.id}`)
            continue
          }
          const cancelled = now.status === 'cancelled' && old.status !== 'cancelled'
          const requested = old.cancel_requested_at === null && now.cancel_requested_at !== null
          if (now.status !== old.status && !cancelled && !(old.status === 'pending' && now.status === 'queued')) {
            throw new Error(`forged status move ${old.status} → ${now.status}`)
          }
          if (cancelled && !['pending', 'queued', 'claimed'].includes(old.status as string))
            throw new Error(`a ${old.status} job was cancelled at once`)
          for (const column of owned) {
            const same = JSON.stringify(now[column]) === JSON.stringify(old[column])
            const byCancel =
              (cancelled || requested) && ['cancel_requested_at', 'error_message', 'error_code', 'completed_at'].includes(column)
            if (!same && !byCancel)
              throw new Error(`forged ${column} on ${old.status} job: ${JSON.stringify(old[column])} → ${JSON.stringify(now[column])}`)
          }
          if (cancelled && now.error_code !== 'CANCELLED') throw new Error(`cancelled with error_code ${now.error_code}`)
        }
        for (const row of after) {
          if (before.some((b) => b.id === row.id)) continue
          if (row.user_id !== me) throw new Error('a row for another user was inserted')
          for (const column of owned.filter((c) => !['id', 'created_at', 'priority'].includes(c))) {
            const fresh = column === 'attempts' ? 0 : column === 'max_attempts' ? 5 : column === 'waited_in_queue' ? false : null
            if (JSON.stringify(row[column]) !== JSON.stringify(fresh))
              throw new Error(`a new row carries ${column} = ${JSON.stringify(row[column])}`)
          }
          if (Date.now() - (row.created_at as Date).getTime() > 60_000) throw new Error(`a new row is backdated to ${row.created_at}`)
        }
        const queue = await sql`
        select j.id from upscaler_jobs j left join rhpool.runs r on r.job_table = 'upscaler_jobs' and r.job_id = j.id
        where (j.status in ('completed', 'failed', 'cancelled')) = (r.job_id is not null)
           or (r.job_id is not null and (r.status, r.priority) is distinct from (j.status, j.priority))`
        if (queue.length > 0) throw new Error(`runs out of step for ${queue.map((q) => q.id).join(', ')}`)
        const slots = await sql`
        select j.id from upscaler_jobs j left join rhpool.runs r on r.job_table = 'upscaler_jobs' and r.job_id = j.id
        where (j.status in ('claimed', 'submitting', 'outcome_unknown', 'running')) is distinct from (r.account is not null)
           or (r.account is not null and r.account is distinct from j.api_account)`
        if (slots.length > 0) throw new Error(`slots out of step for ${slots.map((s) => s.id).join(', ')}`)
      }
    }),
    { numRuns: 40 }
  )
  t.ok(
    landed > 20 && refused > 20,
    `40 random sequences of client operations, no forged write (${landed} statements landed, ${refused} refused)`
  )
})
