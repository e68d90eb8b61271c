// Property, against the running service: Supabase's `authenticated` (NOINHERIT,
// through `authenticator`, under RLS on auth.uid()) does random things — its own
// inserts and queueing, forged writes of rhpool's columns and status moves on its
// own jobs while the dispatcher claims, submits and finishes them, cancels and
// reads of another user's jobs — and no guarantee breaks: no account over its
// limit at RunningHub, one task per job, one terminal event per finished job,
// no slot left, nothing forged in any row, the other user's jobs untouched.
import fc from 'fast-check'
import t from 'tap'
import { clientInsert, newUser, supabaseClient } from './helpers/roles.ts'
import { startSystem, tasksPerJob, testKeys } from './helpers/system.ts'
import { jobTables, type JobTable } from './helpers/jobs.ts'

const forgedTask = '1900000000000000666'
const forgeries: Array<Record<string, unknown>> = [
  { status: 'completed' },
  { status: 'failed' },
  { status: 'running' },
  { status: 'queued' },
  { status: 'cancelled' },
  { api_account: 'account_2' },
  { task_id: forgedTask },
  { attempts: 0 },
  { max_attempts: 1000 },
  { submitted_at: new Date('2100-01-01') },
  { not_before: new Date('2100-01-01') },
  { created_at: new Date('2000-01-01') },
  { priority: 1000 },
  { output_url: 'https://forged.example/out.png' },
  { outputs: [{ url: 'https://forged.example/out.png' }] },
  { rh_cost: 99 },
  { error_code: 'FORGED' },
  { error_message: 'forged' },
]

type Op =
  | { op: 'insert'; table: JobTable; pending: boolean }
  | { op: 'ready' | 'cancel' | 'view'; job: number }
  | { op: 'forge'; job: number; set: Record<string, unknown> }
  | { op: 'cancelOther' | 'viewOther' | 'forgeOther'; job: number }

const job = fc.nat({ max: 30 })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('insert' as const), table: fc.constantFrom(...jobTables), pending: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('ready' as const, 'cancel' as const, 'view' as const), job }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('forge' as const), job, set: fc.constantFrom(...forgeries) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('cancelOther' as const, 'viewOther' as const, 'forgeOther' as const), job }) }
)

t.test('random client operations interleaved with the running service: no guarantee breaks, nothing forged lands', async (t) => {
  const slots = [2, 1]
  const sys = await startSystem(t, { slots, sim: { taskDurationMs: 150 } })
  const { sql } = sys.db
  const client = await supabaseClient(sql, sys.db.name)
  t.teardown(() => client.end())
  const me = newUser()
  const other = newUser()
  const mine: Array<{ table: JobTable; id: string }> = []
  const theirs: Array<{ table: JobTable; id: string }> = []
  for (const table of jobTables) theirs.push({ table, id: await client.as(other, (tx) => clientInsert(tx, table, other)) })
  let landed = 0
  let refused = 0

  const attempt = async (work: () => Promise<unknown>) => {
    try {
      await work()
      landed++
    } catch {
      refused++
    }
  }
  const pick = <T>(list: T[], n: number): T | undefined => (list.length ? list[n % list.length] : undefined)

  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 30 }), async (ops) => {
      for (const op of ops) {
        if (op.op === 'insert') {
          await attempt(async () =>
            mine.push({
              table: op.table,
              id: await client.as(me, (tx) => clientInsert(tx, op.table, me, op.pending ? { status: 'pending' } : {})),
            })
          )
          continue
        }
        const target = op.op.endsWith('Other') ? pick(theirs, op.job) : pick(mine, op.job)
        if (!target) continue
        await attempt(() =>
          client.as(me, async (tx) => {
            switch (op.op) {
              case 'ready':
                return await tx`update ${tx(target.table)} set status = 'queued' where id = ${target.id} and status = 'pending'`
              case 'cancel':
              case 'cancelOther':
                return await tx`select rhpool.cancel_job(${target.table}, ${target.id})`
              case 'view':
              case 'viewOther': {
                const [row] =
                  await tx`select rhpool.job_view(${target.table}, ${target.id}) as v, rhpool.queue_position(${target.table}, ${target.id}) as p`
                if (op.op === 'viewOther' && (row!.v !== null || row!.p !== null)) throw new Error('LEAK')
                return row
              }
              case 'forge':
                return await tx`update ${tx(target.table)} set ${tx(op.set as Record<string, never>)} where id = ${target.id}`
              case 'forgeOther':
                return await tx`update ${tx(target.table)} set status = 'cancelled', error_code = 'FORGED' where id = ${target.id}`
            }
          })
        )
      }
      return true
    }),
    { numRuns: 15, seed: 20261201 }
  )
  t.ok(landed > 0 && refused > 0, `both happened: ${landed} client statements landed, ${refused} were refused`)

  // Let the service finish what was queued (pending jobs wait for their client, honestly).
  await sys.waitFor(
    'the pool to drain',
    async () => {
      const [row] =
        await sql`select count(*)::int as n from rhpool.jobs where status not in ('pending', 'completed', 'failed', 'cancelled')`
      return row!.n === 0
    },
    120_000
  )

  const jobs =
    await sql`select job_table, id::text, user_id::text, status, task_id, output_url, rh_cost, error_code, error_message, priority, api_account from rhpool.jobs`
  t.ok(jobs.length > theirs.length, `${jobs.length} jobs`)
  const forged = jobs.filter(
    (j) =>
      j.task_id === forgedTask ||
      /forged/.test(String(j.output_url) + String(j.error_message)) ||
      j.error_code === 'FORGED' ||
      Number(j.rh_cost) === 99 ||
      j.priority !== 0
  )
  t.same(forged, [], 'no forged value in any row')
  const othersTouched = jobs.filter((j) => j.user_id === other && j.status !== 'completed')
  t.same(othersTouched, [], "the other user's jobs ran to completion: never cancelled or failed by me")
  const wrongAccount = jobs.filter((j) => j.status === 'completed' && !['primary', 'account_2'].includes(j.api_account))
  t.same(wrongAccount, [], 'every completed job ran on an account rhpool chose')

  slots.forEach((limit, i) => {
    const seen = sys.sim.ledger.concurrency(testKeys[i]!).maxConcurrency
    t.ok(seen <= limit, `account ${i + 1}: at most ${limit} tasks at once at RunningHub (seen ${seen})`)
  })
  t.same(
    [...tasksPerJob(sys.sim).entries()].filter(([, n]) => n > 1),
    [],
    'one task per job'
  )
  const completedButFailed = jobs.filter((j) => j.status === 'completed' && sys.sim.task(j.task_id)?.status !== 'SUCCESS')
  t.same(completedButFailed, [], "every completed job's task succeeded at RunningHub")
  const events =
    await sql`select job_table, job_id::text, status, count(*) over (partition by job_table, job_id)::int as n from rhpool.job_events`
  t.same(
    events.filter((e) => e.n > 1),
    [],
    'one terminal event per job'
  )
  const terminal = jobs.filter((j) => ['completed', 'failed', 'cancelled'].includes(j.status))
  t.equal(events.length, terminal.length, 'every finished job has its event, and only those')
  const [slotsLeft] = await sql`select count(*)::int as n from rhpool.runs where account is not null`
  t.equal(slotsLeft!.n, 0, 'no slot left held')
})
