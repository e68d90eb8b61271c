// The queue's counts (db/functions/025-queue-counts.sql) against the queue
// itself: after many connections at once insert, claim, release, retry,
// cancel, delete and expire jobs — as the owner and as a client under RLS —
// every count and every queued job's position is what counting the queue
// says (the definitions status and queue_position had before they stopped
// counting), with the journal folded or not, and a fold leaves no journal row.
import t, { type Test } from 'tap'
import type postgres from 'postgres'
import { migrate as graphileMigrate } from 'graphile-migrate'
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { connect, freshDatabase, type Sql } from './helpers/db.ts'
import { jobTables, readyInputs, setAccounts, type JobTable } from './helpers/jobs.ts'
import { clientInsert, inheritClient, newUser } from './helpers/roles.ts'
import { startSystem } from './helpers/system.ts'
import { tempFolder } from './helpers/temp-folder.ts'
import { migrate, projectRoot } from '../src/db/migrate.ts'

type Tx = postgres.TransactionSql | Sql

interface Truth {
  /** Tools whose queue_status.queued differs from count(*) of its queued runs. */
  tools: Array<{ job_table: string; counted: number; kept: number }>
  queued: number
  /** Queued jobs whose queue_ahead differs from the jobs counted ahead of them. */
  positions: Array<{ job_table: string; job_id: string; counted: number; kept: number }>
  /** Keys whose count (rhpool.queue_counts plus the journal's moves) differs from a count of the runs. */
  keys: number
}

// The definitions before the counts: count(*) and min(fifo_at) of the queued
// runs per tool, and the queued runs ahead of a job (600-status.sql's old queue_ahead).
// Positions of every queued job, or of a random sample of them (a position read
// adds the journal's rows: a large unfolded journal makes all of them slow).
async function truth(sql: Tx, sample = 0): Promise<Truth> {
  const tools = await sql`
    select t.job_table, (select count(*)::int from rhpool.runs r where r.job_table = t.job_table and r.status = 'queued') as counted,
           q.queued as kept
    from rhpool.tools t join rhpool.queue_status q on q.job_table = t.job_table`
  const positions = await sql`
    select me.job_table, me.job_id::text,
           (select count(*)::int from rhpool.runs q
            where q.status = 'queued'
              and (q.priority > me.priority or (q.priority = me.priority and (q.fifo_at, q.job_id) < (me.fifo_at, me.job_id)))) as counted,
           rhpool.queue_ahead(me.job_table, me.job_id) as kept
    from (select * from rhpool.runs r where r.status = 'queued' order by random() limit ${sample > 0 ? sample : null}) me`
  const [keys] = await sql`
    with counted as (
      select r.priority, rhpool.queue_instant(r.fifo_at) as instant, rhpool.queue_id_byte(r.job_id) as id_byte, r.job_table
      from rhpool.runs r where r.status = 'queued'
    ), expected as (
      select 3 as level, priority, 0::bigint as bucket, 0 as id_byte, job_table, count(*) as n from counted group by priority, job_table
      union all select 2, priority, instant >> 28, 0, '', count(*) from counted group by priority, instant >> 28
      union all select 1, priority, instant >> 20, 0, '', count(*) from counted group by priority, instant >> 20
      union all select 0, priority, instant, id_byte, '', count(*) from counted group by priority, instant, id_byte
    ), journal as (
      select j.priority, rhpool.queue_instant(j.fifo_at) as instant, j.id_byte, j.job_table, j.delta from rhpool.queue_journal j
    ), kept as (
      select level, priority, bucket, id_byte, job_table, sum(queued) as n from (
        select level, priority, bucket, id_byte, job_table, queued from rhpool.queue_counts
        union all select 3, priority, 0, 0, job_table, delta from journal
        union all select 2, priority, instant >> 28, 0, '', delta from journal
        union all select 1, priority, instant >> 20, 0, '', delta from journal
        union all select 0, priority, instant, id_byte, '', delta from journal) k
      group by level, priority, bucket, id_byte, job_table having sum(queued) <> 0
    )
    select count(*)::int as n from expected e
    full join kept k using (level, priority, bucket, id_byte, job_table)
    where e.n is distinct from k.n`
  return {
    tools: (tools as unknown as Truth['tools']).filter((x) => x.counted !== x.kept),
    queued: (tools as unknown as Truth['tools']).reduce((sum, x) => sum + x.counted, 0),
    positions: (positions as unknown as Truth['positions']).filter((x) => x.counted !== x.kept),
    keys: keys!.n as number,
  }
}

function assertTrue(t: Test, found: Truth, what: string): void {
  t.same(found.tools, [], `${what}: queue_status.queued = count(*) of the queue, per tool (${found.queued} queued)`)
  t.same(
    found.positions.slice(0, 5),
    [],
    `${what}: every queued job's position = the jobs counted ahead of it (${found.positions.length} differ)`
  )
  t.equal(found.keys, 0, `${what}: every key's count (rhpool.queue_counts + the journal) = a count of the runs`)
}

/** A fold, then: the journal empty, one row per key and none at zero, and every count still exact. */
async function foldAndCheck(t: Test, sql: Sql, what: string): Promise<void> {
  const [{ folded }] = (await sql`select rhpool.fold_queue_journal() as folded`) as unknown as [{ folded: number }]
  t.comment(`${what}: ${folded} moves folded`)
  const [journal] = await sql`select count(*)::int as n from rhpool.queue_journal`
  t.equal(journal!.n, 0, `${what}: the fold left no journal row`)
  const [odd] = await sql`
    select count(*)::int as n from (
      select 1 from rhpool.queue_counts group by level, priority, bucket, id_byte, job_table having count(*) > 1 or sum(queued) = 0) k`
  t.equal(odd!.n, 0, `${what}: one row per key, none at zero`)
  assertTrue(t, await truth(sql), `${what}, folded`)
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!

/** Retries nothing: an error a workload may meet (a job moved under it: claimed before a client's delete, a lost race) just rolls its transaction back. */
const expected = new Set(['40001', '40P01', '55P03', '23514', 'P0001', '22023', '42501', 'P0002'])

interface Errors {
  byCode: Map<string, number>
  /** Errors raised inside the counts' own functions: none expected, ever. */
  counts: string[]
}

async function attempt(errors: Errors, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn()
  } catch (error) {
    const e = error as { code?: string; message: string; where?: string }
    if (/queue_journal|queue_counts|fold_queue/.test(`${e.message} ${e.where ?? ''}`))
      errors.counts.push(`${e.code}: ${e.message} (${e.where})`)
    if (!e.code || !expected.has(e.code)) throw error
    errors.byCode.set(e.code, (errors.byCode.get(e.code) ?? 0) + 1)
  }
}

async function someQueued(tx: Tx, limit = 1): Promise<Array<{ job_table: JobTable; job_id: string }>> {
  return (await tx`select job_table, job_id::text from rhpool.runs where status = 'queued' order by random() limit ${limit}`) as never
}

async function insertQueued(
  tx: Tx,
  table: JobTable,
  count: number,
  priority: number,
  status: 'queued' | 'pending' = 'queued'
): Promise<void> {
  const inputs = readyInputs[table]
  const columns = Object.keys(inputs)
  await tx.unsafe(
    `insert into ${table} (${columns.join(', ')}, status, priority)
     select ${columns.map((c) => `'${inputs[c]}'`).join(', ')}, '${status}', ${priority} from generate_series(1, ${count})`
  )
}

// What a dispatcher does to a queue: claims, and gives some back (released,
// retried later, left to expire).
async function dispatcherStep(sql: Sql, errors: Errors, holder: string): Promise<void> {
  const roll = Math.random()
  await attempt(errors, () =>
    sql.begin(async (tx) => {
      const claims = await tx`select * from rhpool.claim_account_slot(${1 + Math.floor(Math.random() * 4)}, ${holder}, 60)`
      for (const c of claims) {
        if (roll < 0.35) await tx`select rhpool.release_to_queue(${c.job_table}, ${c.job_id}, ${c.claim_token}, 'account full')`
        else if (roll < 0.6) await tx`select rhpool.retry_later(${c.job_table}, ${c.job_id}, ${c.claim_token}, 'TRANSIENT', 'try again', 0)`
        else if (roll < 0.7) await tx`select rhpool.cancel_job(${c.job_table}, ${c.job_id}, 'bench')`
        // else: stays claimed until maintenance expires its lease
      }
    })
  )
}

// An owner's writes, one of a dozen kinds of transaction, each a path into or out of the queue.
async function ownerStep(sql: Sql, errors: Errors): Promise<void> {
  const table = pick(jobTables)
  const priority = Math.floor(Math.random() * 5) - 2
  const kind = Math.floor(Math.random() * 14)
  await attempt(errors, async () => {
    switch (kind) {
      case 0:
      case 1:
        return insertQueued(sql, table, 1 + Math.floor(Math.random() * 20), priority)
      case 2:
        // pending, then queued: its place is the moment it is queued
        return sql.begin(async (tx) => {
          await insertQueued(tx, table, 3, priority, 'pending')
          await tx.unsafe(`update ${table} set status = 'queued' where status = 'pending'`)
        })
      case 3:
        for (const q of await someQueued(sql)) await sql`select rhpool.cancel_job(${q.job_table}, ${q.job_id}::uuid)`
        return
      case 4:
        for (const q of await someQueued(sql, 3)) await sql`delete from ${sql(q.job_table)} where id = ${q.job_id}`
        return
      case 5:
        // a savepoint rolled back takes its moves with it
        return sql.begin(async (tx) => {
          await insertQueued(tx, table, 2, priority)
          await tx
            .savepoint(async (sp) => {
              for (const q of await someQueued(sp, 2)) await sp`select rhpool.cancel_job(${q.job_table}, ${q.job_id}::uuid)`
              await insertQueued(sp, table, 2, priority)
              throw Object.assign(new Error('roll back the savepoint'), { code: 'P0001' })
            })
            .catch((error) => {
              if ((error as { code?: string }).code !== 'P0001') throw error
            })
          for (const q of await someQueued(tx)) await tx`select rhpool.cancel_job(${q.job_table}, ${q.job_id}::uuid)`
        })
      case 6:
        // not READ COMMITTED: journaled all the same
        return sql.begin('isolation level repeatable read', async (tx) => {
          await insertQueued(tx, table, 4, priority)
          for (const q of await someQueued(tx)) await tx`select rhpool.cancel_job(${q.job_table}, ${q.job_id}::uuid)`
        })
      case 7:
        // every lease expired: claimed jobs go back to their place (or fail after their attempts)
        return sql`select rhpool.expire_leases(now() + interval '1 hour')`
      case 8:
        return sql`select rhpool.run_maintenance()`
      case 11:
      case 12:
        // a fold racing the moves of every other connection (a dispatcher's QueueFolder)
        return sql`select rhpool.fold_queue_journal()`
      case 9:
        // a hand-written priority change, as the owner may make
        for (const q of await someQueued(sql))
          await sql`update rhpool.runs set priority = priority + 1 where job_table = ${q.job_table} and job_id = ${q.job_id}::uuid and status = 'queued'`
        return
      case 10:
        // the counts checked against the queue inside a writing transaction, before it commits
        return sql.begin(async (tx) => {
          await insertQueued(tx, table, 2, priority)
          for (const q of await someQueued(tx)) await tx`select rhpool.cancel_job(${q.job_table}, ${q.job_id}::uuid)`
          const [mine] = await tx`
            select (select sum(queued)::int from rhpool.queue_status) as kept,
                   (select count(*)::int from rhpool.runs where status = 'queued') as counted`
          if (mine!.kept !== mine!.counted)
            errors.counts.push(`inside a transaction: queue_status says ${mine!.kept}, the queue ${mine!.counted}`)
        })
      default:
        // one job inserted at one instant with many others: a shared created_at (only the owner can write one)
        return sql.unsafe(
          `insert into ${table} (${Object.keys(readyInputs[table]).join(', ')}, status, priority, created_at)
           select ${Object.values(readyInputs[table])
             .map((v) => `'${v}'`)
             .join(', ')}, 'queued', ${priority}, now() from generate_series(1, 40)`
        )
    }
  })
}

t.test('16 connections at once move jobs in and out of the queue: the counts stay exact', async (t) => {
  const { sql, url } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 20 },
    { name: 'account_2', slots: 20 },
  ])
  for (const table of jobTables) await insertQueued(sql, table, 50, 0)
  assertTrue(t, await truth(sql), 'before')

  const errors: Errors = { byCode: new Map(), counts: [] }
  const connections = 16
  const pool = connect(url, { max: connections })
  t.teardown(() => pool.end({ timeout: 5 }))
  const worker = async (n: number): Promise<void> => {
    for (let i = 0; i < 40; i++) {
      if (n % 4 === 0) await dispatcherStep(pool, errors, 'test')
      else await ownerStep(pool, errors)
    }
  }
  await Promise.all(Array.from({ length: connections }, (_, n) => worker(n)))
  t.comment(`rolled back: ${JSON.stringify(Object.fromEntries(errors.byCode))}`)
  t.same(errors.counts, [], 'no error ever came from the counts themselves (no deadlock among folds, nothing refused)')

  const after = await truth(sql, 300)
  t.ok(after.queued > 0, 'jobs are still queued')
  assertTrue(t, after, 'after the run (300 positions, journal unfolded)')
  await foldAndCheck(t, sql, 'after the run')

  // queue_position, through the product's row, as job_view and `rhpool jobs` call it
  const [positions] = await sql`
    with o as (
      select job_table, job_id, row_number() over (order by priority desc, fifo_at, job_id)::int as expected
      from rhpool.runs where status = 'queued')
    select count(*)::int as n, count(*) filter (where rhpool.queue_position(o.job_table, o.job_id) is distinct from o.expected)::int as wrong from o`
  t.equal(positions!.wrong, 0, `queue_position of all ${positions!.n} queued jobs: 1 + the jobs ahead`)
})

t.test('clients under RLS move their own jobs while dispatchers claim: the counts stay exact', async (t) => {
  const db = await freshDatabase(t)
  const { sql, url } = db
  const client = await inheritClient(sql, url)
  t.teardown(() => client.end())
  t.comment(client.kind)
  await setAccounts(sql, [{ name: 'primary', slots: 10 }])
  const sessions = connect(url, { max: 12 })
  t.teardown(() => sessions.end({ timeout: 5 }))
  // The role inheritClient set up: each transaction as one user, under its RLS.
  const as = <T>(userId: string, fn: (tx: postgres.TransactionSql) => Promise<T>) =>
    sessions.begin(async (tx) => {
      await tx`set local role rhpool_test_app_user`
      await tx`select set_config('request.jwt.claim.sub', ${userId}, true)`
      return await fn(tx)
    }) as Promise<T>
  const users = Array.from({ length: 12 }, () => newUser())
  const errors: Errors = { byCode: new Map(), counts: [] }

  const clientStep = async (user: string): Promise<void> => {
    const table = pick(jobTables)
    const roll = Math.random()
    await attempt(errors, () =>
      as(user, async (tx) => {
        if (roll < 0.4) {
          await clientInsert(tx, table, user)
        } else if (roll < 0.55) {
          const id = await clientInsert(tx, table, user, { status: 'pending' })
          await tx`update ${tx(table)} set status = 'queued' where id = ${id}`
        } else {
          // its own jobs only: RLS shows it nothing else
          const [mine] = await tx`select id::text from ${tx(table)} where status = 'queued' order by random() limit 1`
          if (!mine) return
          if (roll < 0.7) await tx`select rhpool.cancel_job(${table}, ${mine.id}::uuid)`
          else if (roll < 0.8) await tx`delete from ${tx(table)} where id = ${mine.id}`
          else if (roll < 0.9) await tx`update ${tx(table)} set cancel_requested_at = now() where id = ${mine.id}`
          else {
            await tx`select rhpool.queue_position(${table}, ${mine.id}::uuid)`
          }
        }
      })
    )
  }
  const owner = connect(url, { max: 4 })
  t.teardown(() => owner.end({ timeout: 5 }))
  await Promise.all([
    ...users.map(async (user) => {
      for (let i = 0; i < 30; i++) await clientStep(user)
    }),
    ...Array.from({ length: 4 }, async (_, n) => {
      for (let i = 0; i < 30; i++) {
        if (n === 3 && i % 10 === 9) await attempt(errors, () => owner`select rhpool.expire_leases(now() + interval '1 hour')`)
        else await dispatcherStep(owner, errors, 'test')
      }
    }),
  ])
  t.comment(`rolled back: ${JSON.stringify(Object.fromEntries(errors.byCode))}`)
  t.same(errors.counts, [], 'no error came from the counts')
  assertTrue(t, await truth(sql), 'after the run')

  // A client's view of its own jobs' places: what counting the queue says.
  let checked = 0
  const wrong: string[] = []
  for (const user of users.slice(0, 4)) {
    for (const table of jobTables) {
      const seen = await as(
        user,
        (tx) => tx`select id::text, rhpool.queue_position(${table}, id) as position from ${tx(table)} where status = 'queued'`
      )
      for (const row of seen) {
        const [expected] = await sql`
          select (select count(*)::int from rhpool.runs q
                  where q.status = 'queued'
                    and (q.priority > me.priority or (q.priority = me.priority and (q.fifo_at, q.job_id) < (me.fifo_at, me.job_id)))) + 1 as position
          from rhpool.runs me where me.job_table = ${table} and me.job_id = ${row.id}::uuid`
        if (row.position !== expected!.position) wrong.push(`${table}/${row.id}: ${row.position}, counted ${expected!.position}`)
        checked++
      }
    }
  }
  t.ok(checked > 0, `${checked} positions read by their clients`)
  t.same(wrong, [], "a client's queue_position of each of its queued jobs: 1 + the jobs counted ahead")
  const status = (await as(users[0]!, (tx) => tx`select rhpool.pool_status() as s`))[0]!.s
  const [queued] = await sql`select count(*)::int as n from rhpool.runs where status = 'queued'`
  t.equal(status.totalQueued, queued!.n, "pool_status as a client: every user's queued jobs counted, none shown")

  // The counts are rhpool's: a client can neither write nor repair them.
  const me = users[0]!
  const refusals = [
    `insert into rhpool.queue_counts (level, priority, bucket, id_byte, job_table, queued) values (3, 0, 0, 0, 'upscaler_jobs', 1000)`,
    `update rhpool.queue_counts set queued = queued + 1`,
    `delete from rhpool.queue_counts`,
    `insert into rhpool.queue_journal (job_table, priority, fifo_at, id_byte, delta) values ('upscaler_jobs', 0, now(), 0, 1)`,
    `delete from rhpool.queue_journal`,
    `select rhpool.recount_queue()`,
    `select rhpool.fold_queue_journal()`,
    `select * from rhpool.queued_by_table()`,
  ]
  for (const statement of refusals) {
    await t.rejects(
      as(me, (tx) => tx.unsafe(statement)),
      { code: '42501' },
      `refused to a client: ${statement.slice(0, 60)}`
    )
  }
  assertTrue(t, await truth(sql), 'after the refusals')
  await foldAndCheck(t, sql, 'after the refusals')
})

t.test('a transaction sees its own moves; rollbacks, isolation levels and TRUNCATE keep the counts exact', async (t) => {
  const { sql } = await freshDatabase(t)
  await insertQueued(sql, 'upscaler_jobs', 10, 0)
  await insertQueued(sql, 'veste_ai_jobs', 10, 1)

  await sql.begin(async (tx) => {
    await insertQueued(tx, 'pose_changer_jobs', 7, 2)
    const [{ job_table, job_id }] = (await someQueued(tx)) as [{ job_table: string; job_id: string }]
    await tx`select rhpool.cancel_job(${job_table}, ${job_id}::uuid)`
    const inside = await truth(tx)
    t.same(inside.tools, [], 'inside the transaction: its own moves are counted')
    t.same(inside.positions, [], 'inside the transaction: positions count its own moves')
    await tx
      .savepoint(async (sp) => {
        await insertQueued(sp, 'pose_changer_jobs', 5, -1)
        t.same((await truth(sp)).positions, [], 'inside a savepoint')
        throw Object.assign(new Error('undo'), { code: 'P0001' })
      })
      .catch(() => {})
    t.same((await truth(tx)).tools, [], 'after rolling the savepoint back')
    await tx`select rhpool.fold_queue_journal()`
    t.same((await truth(tx)).tools, [], 'a fold inside the transaction takes its own moves: counted once')
    await insertQueued(tx, 'pose_changer_jobs', 2, 0)
  })
  assertTrue(t, await truth(sql), 'after commit')

  await sql
    .begin(async (tx) => {
      await insertQueued(tx, 'upscaler_jobs', 50, 0)
      throw new Error('rolled back')
    })
    .catch(() => {})
  assertTrue(t, await truth(sql), 'after a rollback')

  for (const level of ['repeatable read', 'serializable']) {
    await sql.begin(`isolation level ${level}`, async (tx) => {
      await insertQueued(tx, 'video_upscaler_jobs', 3, 0)
      const [{ job_table, job_id }] = (await someQueued(tx)) as [{ job_table: string; job_id: string }]
      await tx`select rhpool.cancel_job(${job_table}, ${job_id}::uuid)`
    })
    assertTrue(t, await truth(sql), level)
  }
  await foldAndCheck(t, sql, 'after the isolation levels')

  const before =
    await sql`select level, priority, bucket, id_byte, job_table, sum(queued)::int as n from rhpool.queue_counts group by 1, 2, 3, 4, 5 order by 1, 2, 3, 4, 5`
  const [{ recounted }] = (await sql`select rhpool.recount_queue() as recounted`) as unknown as [{ recounted: string }]
  t.equal(Number(recounted), (await truth(sql)).queued, 'recount_queue returns the queued runs')
  t.same(
    await sql`select level, priority, bucket, id_byte, job_table, sum(queued)::int as n from rhpool.queue_counts group by 1, 2, 3, 4, 5 order by 1, 2, 3, 4, 5`,
    before,
    'counting the queue again finds what was kept'
  )

  await insertQueued(sql, 'upscaler_jobs', 5, 0)
  await sql.unsafe(`truncate ${jobTables.join(', ')}, rhpool.runs`)
  const [{ n }] = (await sql`select count(*)::int as n from rhpool.queue_counts`) as unknown as [{ n: number }]
  t.equal(n, 0, 'TRUNCATE of the runs empties the counts')
  t.equal((await sql`select count(*)::int as n from rhpool.queue_journal`)[0]!.n, 0, 'and the journal')
  assertTrue(t, await truth(sql), 'after TRUNCATE')
})

t.test('a fold takes only committed moves; one fold at a time, the second returns at once', async (t) => {
  const { sql, url } = await freshDatabase(t)
  await insertQueued(sql, 'upscaler_jobs', 10, 0)
  const other = connect(url, { max: 2 })
  t.teardown(() => other.end({ timeout: 5 }))
  // A mover in progress: its 5 moves are not the fold's to take.
  let commit!: () => void
  const committed = new Promise<void>((resolve) => (commit = resolve))
  let moved!: () => void
  const hasMoved = new Promise<void>((resolve) => (moved = resolve))
  const mover = other.begin(async (tx) => {
    await insertQueued(tx, 'veste_ai_jobs', 5, 0)
    moved()
    await committed
  })
  await hasMoved
  const [{ folded }] = (await sql`select rhpool.fold_queue_journal() as folded`) as unknown as [{ folded: number }]
  t.equal(folded, 10, 'the fold took the 10 committed moves')
  commit()
  await mover
  t.equal((await sql`select count(*)::int as n from rhpool.queue_journal`)[0]!.n, 5, 'and left the 5 of the transaction then in progress')
  assertTrue(t, await truth(sql), 'the mover committed after the fold')
  // A fold holding its lock (an open transaction that folded) makes the next one return 0 without waiting.
  await insertQueued(sql, 'upscaler_jobs', 3, 0)
  await other.begin(async (tx) => {
    t.equal((await tx`select rhpool.fold_queue_journal() as n`)[0]!.n, 8, 'a fold in an open transaction')
    t.equal((await sql`select rhpool.fold_queue_journal() as n`)[0]!.n, 0, 'a second fold meanwhile returns 0 at once')
  })
  await foldAndCheck(t, sql, 'after both')
})

t.test('jobs of one instant (a created_at shared by thousands) are placed exactly, counting a 256th of them', async (t) => {
  const { sql } = await freshDatabase(t)
  await insertQueued(sql, 'upscaler_jobs', 20, 0)
  const inputs = Object.keys(readyInputs.upscaler_jobs)
  await sql.unsafe(`
    insert into upscaler_jobs (${inputs.join(', ')}, status, created_at)
    select ${Object.values(readyInputs.upscaler_jobs)
      .map((v) => `'${v}'`)
      .join(', ')}, 'queued', timestamptz '2026-03-01 12:00:00+00'
    from generate_series(1, 4000)`)
  await insertQueued(sql, 'upscaler_jobs', 20, 0)
  assertTrue(t, await truth(sql), 'positions in and around the instant, from the journal')
  await foldAndCheck(t, sql, 'positions in and around the instant')
  const [group] = await sql`
    select count(*)::int as n from rhpool.queue_counts where level = 0 and bucket = rhpool.queue_instant(timestamptz '2026-03-01 12:00:00+00')`
  t.ok(group!.n > 200, `the instant is split by the first byte of the job id (${group!.n} keys)`)
  // The last of them: what is still counted in the queue is its own id byte's share.
  const [last] = await sql`
    select job_table, job_id from rhpool.runs where status = 'queued' and fifo_at = timestamptz '2026-03-01 12:00:00+00'
    order by job_id desc limit 1`
  const [plan] = await sql`
    select count(*)::int as n from rhpool.runs q
    where q.status = 'queued' and q.priority = 0 and q.fifo_at = timestamptz '2026-03-01 12:00:00+00'
      and q.job_id >= rhpool.queue_id_floor(rhpool.queue_id_byte(${last!.job_id})) and q.job_id < ${last!.job_id}`
  t.ok(plan!.n < 100, `the last job of 4000 counts ${plan!.n} runs of its instant, not 3999`)
})

// Upgrading: the migration makes empty tables; the function layer, which
// installs the triggers, counts what is queued in the same transaction, so
// runs moved by the release before in between are counted too.
t.test('an upgraded database gets counts of what it has queued, moves between migration and function layer included', async (t) => {
  const { sql, url } = await freshDatabase(t, { template: null })
  const folder = tempFolder(t, 'rhpool-counts-')
  mkdirSync(join(folder, 'committed'))
  const committed = join(projectRoot, 'db', 'migrations', 'committed')
  const files = readdirSync(committed).filter((f) => f.endsWith('.sql'))
  const copy = (keep: (f: string) => boolean) => {
    for (const file of files.filter(keep)) copyFileSync(join(committed, file), join(folder, 'committed', file))
  }
  const runs = (n: number, offset: number) =>
    sql.unsafe(`
      insert into rhpool.runs (job_table, job_id, status, priority, fifo_at)
      select (array['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'])[1 + i % 4], gen_random_uuid(),
             case when i % 5 = 0 then 'pending' else 'queued' end, i % 3 - 1, timestamptz '2026-01-01' + (i + ${offset}) * interval '1 second'
      from generate_series(1, ${n}) i`)
  // The schema of the release before, with queued runs.
  copy((f) => f < '000017')
  await graphileMigrate({ connectionString: url, migrationsFolder: folder }, false, false)
  await runs(300, 0)
  // 000017 makes the (empty) tables...
  copy(() => true)
  await graphileMigrate({ connectionString: url, migrationsFolder: folder }, false, false)
  // ...while the release before still runs (no counting triggers yet) and queues more.
  await runs(30, 1000)
  await migrate(url)
  assertTrue(t, await truth(sql), 'after the function layer')
  await runs(30, 2000)
  assertTrue(t, await truth(sql), 'runs written once the triggers are in')
})

// The journal is folded by the dispatchers (src/dispatcher/queue-fold.ts), not
// only by maintenance: with maintenance's own timer set to an hour (pg_cron does
// not run in test databases), a running pool's journal still empties.
t.test('a running dispatcher folds the journal by itself', async (t) => {
  const sys = await startSystem(t, {
    slots: [2],
    env: { RHPOOL_MAINTENANCE_INTERVAL_MS: '3600000', RHPOOL_QUEUE_FOLD_INTERVAL_MS: '200' },
  })
  const { sql } = sys.db
  await insertQueued(sql, 'upscaler_jobs', 6, 0)
  await sys.waitFor('the six jobs completed', async () => {
    const [row] = await sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`
    return row!.n === 6
  })
  await sys.waitFor('the journal folded', async () => {
    const [row] = await sql`select count(*)::int as n from rhpool.queue_journal`
    return row!.n === 0
  })
  const [{ kept }] = (await sql`select coalesce(sum(queued), 0)::int as kept from rhpool.queue_counts`) as unknown as [{ kept: number }]
  t.equal(kept, 0, 'nothing queued, nothing counted')
})
