// A job's row is rewritten by each of rhpool's transitions (claimed,
// submitting, running, finished). An update that changes no indexed column
// (nor one an index's WHERE clause names) can be heap-only: the new version
// stays on the row's page and no index gets a new entry. Only the running
// step changes one (task_id, which RunningHub's answer gives and the task id
// index must find), so the other three must be heap-only. An index on a column
// a transition writes, added to a job table by rhpool, breaks this: it makes
// every job pay for every index of its table, four times.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { insertJob, jobTables, setAccounts } from './helpers/jobs.ts'

t.test('of the four writes of a job row, only the one that gives it its task id touches an index', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 4 }])
  for (const [n, table] of jobTables.entries()) {
    const id = await insertJob(sql, table)
    // One transaction, so pg_stat_xact_user_tables counts exactly these writes.
    const counts = await sql.begin(async (tx) => {
      const [c] = await tx`select job_table, job_id, claim_token from rhpool.claim_account_slot(1, 'test', 60)`
      if (!c || c.job_id !== id) throw new Error(`${table}: the claim did not answer the job just inserted`)
      await tx`select rhpool.begin_submission(${table}, ${id}, ${c.claim_token}, 30)`
      await tx`select rhpool.record_submission(${table}, ${id}, ${c.claim_token}, ${`19000000000000${n}0001`})`
      const [finished] = await tx`
        select rhpool.finish_job(${table}, ${id}, ${`19000000000000${n}0001`}, true,
          ${sql.json([{ fileUrl: 'https://example.invalid/out.png', fileType: 'png' }])},
          ${sql.json({ consumeMoney: '0.12', taskCostTime: '31' })}) as outcome`
      if (finished!.outcome !== 'applied') throw new Error(`${table}: finish_job answered ${finished!.outcome}`)
      const [stats] = await tx`
        select n_tup_upd::integer as updates, n_tup_hot_upd::integer as heap_only
        from pg_stat_xact_user_tables where schemaname = 'public' and relname = ${table}`
      return stats!
    })
    const [job] = await sql`select status from ${sql(table)} where id = ${id}`
    t.equal(job!.status, 'completed', `${table}: the job went the whole way`)
    t.same(counts, { updates: 4, heap_only: 3 }, `${table}: claimed, submitting and finished are heap-only; running is not`)
  }
})
