// Property: any sequence of the scheduler's SQL operations (claims by several holders,
// begin/record submission, releases, retries, finishes, cancels, unknown outcomes,
// callbacks, expired leases, maintenance, accounts full/broken/back) keeps the
// invariants after every step: no account over its slots, one run per unfinished job in
// the job's status (on the job's account while in flight), no run for a finished job, one
// terminal event per finished job (saying what it ended as), and a finished job staying
// finished. Steps after a claim carry a token: the claim's own, or a stale one (which
// must change nothing).
import fc from 'fast-check'
import t from 'tap'
import { freshDatabase, type Sql } from './helpers/db.ts'
import { jobTables, readyInputs, setAccounts } from './helpers/jobs.ts'

const accounts = [
  { name: 'primary', slots: 2 },
  { name: 'account_2', slots: 1 },
]
const holders = ['dispatcher-a', 'dispatcher-b']

type Op =
  | { op: 'insert'; table: number; priority: number }
  | { op: 'claim'; max: number; holder: number; strategy: 'fill-first' | 'spread' }
  | {
      op: 'begin' | 'record' | 'release' | 'retry' | 'unknown' | 'cancel' | 'finishCancel' | 'expire' | 'full' | 'broken'
      job: number
      holder: number
    }
  | { op: 'finish'; job: number; succeeded: boolean }
  | { op: 'callback'; job: number; attemptOffset: number; status: 'SUCCESS' | 'FAILED' | 'CANCEL'; sameTask: boolean }
  | { op: 'maintenance' | 'failUnknowns' }
  | { op: 'enable'; account: number }

const job = fc.nat({ max: 50 })
/** holders.length means "the job's current claim" (a dispatcher acting on its own claim); others a stale one. */
const holder = fc.nat({ max: holders.length })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('insert' as const), table: fc.nat({ max: 3 }), priority: fc.constantFrom(0, 0, 0, 5, -5) }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('claim' as const),
      max: fc.integer({ min: 1, max: 4 }),
      holder,
      strategy: fc.constantFrom('fill-first' as const, 'spread' as const),
    }),
  },
  { weight: 6, arbitrary: fc.record({ op: fc.constantFrom('begin' as const, 'record' as const), job, holder }) },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constantFrom(
        'release' as const,
        'retry' as const,
        'unknown' as const,
        'cancel' as const,
        'finishCancel' as const,
        'expire' as const,
        'full' as const,
        'broken' as const
      ),
      job,
      holder,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('finish' as const), job, succeeded: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('callback' as const),
      job,
      attemptOffset: fc.integer({ min: -1, max: 1 }),
      status: fc.constantFrom('SUCCESS' as const, 'FAILED' as const, 'CANCEL' as const),
      sameTask: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('maintenance' as const, 'failUnknowns' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('enable' as const), account: fc.nat({ max: accounts.length - 1 }) }) }
)

const relevant: Partial<Record<Op['op'], string[]>> = {
  begin: ['claimed'],
  record: ['submitting', 'outcome_unknown'],
  unknown: ['submitting'],
  release: ['claimed', 'submitting'],
  retry: ['claimed', 'submitting'],
  expire: ['claimed', 'submitting'],
  full: ['claimed', 'submitting'],
  broken: ['claimed', 'submitting'],
  finish: ['submitting', 'outcome_unknown', 'running'],
  callback: ['claimed', 'submitting', 'outcome_unknown', 'running', 'completed'],
  cancel: ['queued', 'claimed', 'submitting', 'outcome_unknown', 'running'],
  finishCancel: ['submitting', 'outcome_unknown', 'running'],
}

async function reset(sql: Sql): Promise<void> {
  await sql.unsafe(`truncate ${jobTables.join(', ')}, rhpool.runs, rhpool.job_events, rhpool.webhook_deliveries, rhpool.maintenance_log`)
  await sql`update rhpool.accounts set enabled = true, disabled_reason = null, disabled_code = null, cooldown_until = null, cooldown_streak = 0, learned_limit = null, learned_at = null, learned_reason = null`
  await sql`update rhpool.tools set callback_deadline = interval '10 minutes'`
}

/** Every invariant, as rows describing what is wrong (none when all hold). */
async function violations(sql: Sql): Promise<string[]> {
  const rows = await sql`
    with jobs as (
      select 'upscaler_jobs' as job_table, id, status, api_account, priority, created_at, not_before, attempts from upscaler_jobs
      union all select 'pose_changer_jobs', id, status, api_account, priority, created_at, not_before, attempts from pose_changer_jobs
      union all select 'veste_ai_jobs', id, status, api_account, priority, created_at, not_before, attempts from veste_ai_jobs
      union all select 'video_upscaler_jobs', id, status, api_account, priority, created_at, not_before, attempts from video_upscaler_jobs
    )
    select format('account %s holds %s slots, limit %s', a.name, count(r.*), a.slots) as problem
      from rhpool.accounts a left join rhpool.runs r on r.account = a.name group by a.name, a.slots having count(r.*) > a.slots
    union all
    select format('run of %s/%s is %s on %s, job is %s on %s', r.job_table, r.job_id, r.status, coalesce(r.account, '-'), coalesce(j.status, 'missing'), coalesce(j.api_account, '-'))
      from rhpool.runs r left join jobs j on j.job_table = r.job_table and j.id = r.job_id
     where j.id is null or j.status is distinct from r.status
        or (r.account is not null and j.api_account is distinct from r.account)
        or (r.priority, r.not_before, r.attempts) is distinct from (j.priority, j.not_before, j.attempts)
    union all
    select format('%s/%s is %s without a run', j.job_table, j.id, j.status)
      from jobs j where not (j.status = any (rhpool.terminal_statuses()))
       and not exists (select 1 from rhpool.runs r where r.job_table = j.job_table and r.job_id = j.id)
    union all
    select format('%s/%s is %s with %s terminal events', j.job_table, j.id, j.status, count(e.*))
      from jobs j left join rhpool.job_events e on e.job_table = j.job_table and e.job_id = j.id
     group by j.job_table, j.id, j.status
    having count(e.*) <> case when j.status = any (rhpool.terminal_statuses()) then 1 else 0 end
    union all
    select format('event of %s/%s says %s, job is %s', e.job_table, e.job_id, e.status, j.status)
      from rhpool.job_events e join jobs j on j.job_table = e.job_table and j.id = e.job_id where e.status <> j.status
    union all
    select format('%s/%s has attempts %s', j.job_table, j.id, j.attempts) from jobs j where j.attempts < 0`
  return rows.map((r) => r.problem as string)
}

t.test('random sequences of scheduler operations keep every invariant', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, accounts)
  const tally: Record<string, number> = {}
  let taskCounter = 1_900_000_000_000_000_000n
  const seen = new Set<string>()

  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 60, size: 'large' }), async (ops) => {
      await reset(sql)
      const ids: Array<{ table: string; id: string }> = []
      const finished = new Map<string, string>()
      // Even picks take a job in a state the operation acts on; odd ones any job (a call on
      // a job in the wrong state must change nothing, which is worth trying too).
      const pickJob = async (n: number, op: Op['op']) => {
        if (ids.length === 0) return null
        const wanted = relevant[op]
        if (n % 2 === 0 && wanted) {
          const rows =
            await sql`select job_table as table, id::text from rhpool.jobs where status = any (${sql.array(wanted)}) order by created_at, id`
          if (rows.length) return rows[(n >> 1) % rows.length] as unknown as { table: string; id: string }
        }
        return ids[n % ids.length]!
      }
      for (const [step, op] of ops.entries()) {
        const target = 'job' in op ? await pickJob(op.job, op.op) : null
        if ('job' in op && !target) continue
        const h = 'holder' in op ? (holders[op.holder] ?? holders[0]!) : holders[0]!
        // The job's current claim, or a stale one: the claim before it (or none at all).
        let token = '0'
        if ('holder' in op && target) {
          const [run] = await sql`select claim_token from rhpool.runs where job_table = ${target.table} and job_id = ${target.id}`
          const current = (run?.claim_token as string | null | undefined) ?? null
          token = op.holder === holders.length && current ? current : String(BigInt(current ?? '1') - 1n)
        }
        try {
          switch (op.op) {
            case 'insert': {
              const table = jobTables[op.table]!
              const [row] =
                await sql`insert into ${sql(table)} ${sql({ ...readyInputs[table], status: 'queued', priority: op.priority })} returning id`
              ids.push({ table, id: row!.id as string })
              break
            }
            case 'claim':
              await sql`select * from rhpool.claim_account_slot(${op.max}, ${h}, 60, ${op.strategy})`
              break
            case 'begin':
              await sql`select rhpool.begin_submission(${target!.table}, ${target!.id}, ${token}, 30)`
              break
            case 'record':
              await sql`select rhpool.record_submission(${target!.table}, ${target!.id}, ${token}, ${String(taskCounter++)})`
              break
            case 'release':
              await sql`select rhpool.release_to_queue(${target!.table}, ${target!.id}, ${token}, 'test')`
              break
            case 'retry':
              await sql`select rhpool.retry_later(${target!.table}, ${target!.id}, ${token}, '1000', 'transient', 0)`
              break
            case 'unknown':
              await sql`select rhpool.mark_outcome_unknown(${target!.table}, ${target!.id}, ${token}, 'no answer')`
              break
            case 'cancel':
              await sql`select rhpool.cancel_job(${target!.table}, ${target!.id})`
              break
            case 'finishCancel':
              await sql`select rhpool.finish_cancel(${target!.table}, ${target!.id})`
              break
            case 'finish': {
              const [row] = await sql`select task_id from ${sql(target!.table)} where id = ${target!.id}`
              await sql`select rhpool.finish_job(${target!.table}, ${target!.id}, ${row?.task_id ?? String(taskCounter++)}, ${op.succeeded}, null, null, ${op.succeeded ? null : '805'}, null)`
              break
            }
            case 'callback': {
              const [row] = await sql`select task_id, attempts from ${sql(target!.table)} where id = ${target!.id}`
              const attempt = Math.max(1, (row!.attempts as number) + op.attemptOffset)
              const taskId = op.sameTask ? (row!.task_id as string | null) : String(taskCounter++)
              const callback = {
                status: op.status,
                outputs: op.status === 'SUCCESS' ? [{ url: 'https://cdn.example/o.png' }] : null,
                usage: null,
                error_code: op.status === 'FAILED' ? '805' : null,
                error_message: null,
              }
              await sql`select rhpool.apply_callback(${target!.table}, ${target!.id}, ${attempt}, ${taskId}, ${sql.json(callback)}, '{}')`
              break
            }
            case 'expire':
              await sql`select rhpool.expire_leases(now() + interval '1 hour')`
              break
            case 'full':
            case 'broken': {
              const [row] = await sql`select api_account from ${sql(target!.table)} where id = ${target!.id}`
              const account = (row?.api_account as string | null) ?? 'primary'
              if (op.op === 'full') await sql`select rhpool.account_was_full(${target!.table}, ${target!.id}, ${token}, ${account}, '421')`
              else await sql`select rhpool.account_was_broken(${target!.table}, ${target!.id}, ${token}, ${account}, '802')`
              break
            }
            case 'enable':
              await sql`select rhpool.enable_account(${accounts[op.account]!.name})`
              break
            case 'maintenance':
              await sql`select rhpool.run_maintenance()`
              break
            case 'failUnknowns':
              await sql`update rhpool.tools set callback_deadline = interval '0 seconds'`
              await sql`select rhpool.fail_unresolved_unknowns()`
              await sql`update rhpool.tools set callback_deadline = interval '10 minutes'`
              break
          }
        } catch (error) {
          throw new Error(`step ${step} ${JSON.stringify(op)} raised: ${(error as Error).message}`)
        }
        tally[op.op] = (tally[op.op] ?? 0) + 1
        const problems = await violations(sql)
        if (problems.length) throw new Error(`after step ${step} ${JSON.stringify(op)}: ${problems.slice(0, 5).join('; ')}`)
        const states = await sql`select job_table, id::text, status from rhpool.jobs`
        for (const s of states) seen.add(s.status as string)
        for (const s of states.filter((x) => ['completed', 'failed', 'cancelled'].includes(x.status))) {
          const key = `${s.job_table}/${s.id}`
          const was = finished.get(key)
          if (was && was !== s.status) throw new Error(`after step ${step}: ${key} was ${was} and became ${s.status}`)
          finished.set(key, s.status as string)
        }
      }
      const [ended] = await sql`select count(*)::int as n from rhpool.job_events`
      tally.terminalEvents = (tally.terminalEvents ?? 0) + ended!.n
    }),
    { numRuns: 50, seed: Number(process.env.RHPOOL_PROPERTY_SEED ?? 31337), endOnFailure: true }
  )
  t.pass(`operations run: ${JSON.stringify(tally)}`)
  t.ok((tally.claim ?? 0) > 50 && (tally.terminalEvents ?? 0) > 20, 'the sequences reach claims and terminal states')
  t.ok(
    ['claimed', 'submitting', 'running', 'completed', 'failed', 'cancelled'].every((s) => seen.has(s)),
    `and most states a job can be in (seen: ${[...seen].sort().join(', ')})`
  )
})
