// What each account spent, kept per hour (db/functions/027-spend-by-hour.sql)
// against the job rows themselves: after many connections at once complete,
// fail and cancel jobs on several accounts while folds run beside them, the
// dashboard's figures (rhpool.spent_since, the hours plus the journal) are what
// summing the completed jobs says, with the journal folded or not; a rolled
// back completion counts nothing, and a fold leaves no journal row.
import t from 'tap'
import { connect, freshDatabase, type Sql } from './helpers/db.ts'
import { claim, insertJob, jobTables, runClaimed, setAccounts } from './helpers/jobs.ts'

interface Spent {
  account: string
  completed: number
  /** A number: SQL's numeric text keeps trailing zeros (3.60), the dashboard's JSON does not (3.6). */
  money: number
}

const asSpent = (rows: Array<Record<string, unknown>>): Spent[] =>
  rows.map((r) => ({ account: String(r.account), completed: Number(r.completed), money: Number(r.money) }))

const accounts = [
  { name: 'primary', slots: 6 },
  { name: 'account_2', slots: 6 },
  { name: 'account_3', slots: 6 },
]

// The definition before the hours: the completed jobs' rows, summed per account.
async function fromJobRows(sql: Sql): Promise<Spent[]> {
  const rows = (await sql`
    select j.api_account as account, count(*)::int as completed,
           coalesce(sum(j.rh_cost) filter (where j.rh_cost_unit = 'money'), 0)::text as money
    from rhpool.jobs j
    where j.status = 'completed' and j.api_account is not null
    group by j.api_account order by j.api_account`) as unknown as Array<Record<string, unknown>>
  return asSpent(rows)
}

async function kept(sql: Sql): Promise<Spent[]> {
  return asSpent(
    (await sql`
    select account, completed::int, money::text from rhpool.spent_since(now() - interval '24 hours') order by account`) as unknown as Array<
      Record<string, unknown>
    >
  )
}

/** The dashboard's per-account figures, as it shows them. */
async function dashboardSpent(sql: Sql): Promise<Spent[]> {
  const [{ data }] = (await sql`select rhpool.dashboard_data(0) as data`) as unknown as [
    { data: { accounts: Array<Record<string, unknown>> } },
  ]
  return data.accounts
    .filter((a) => Number(a.completed) > 0)
    .map((a) => ({ account: a.name, completed: a.completed, money: a.cost }))
    .sort((a, b) => String(a.account).localeCompare(String(b.account)))
    .map((a) => asSpent([a])[0]!)
}

t.test(
  'many connections complete, fail and cancel jobs on three accounts while folds run: the hours + journal = the job rows',
  async (t) => {
    const { url, sql } = await freshDatabase(t)
    await setAccounts(sql, accounts)
    const workers = Array.from({ length: 6 }, () => connect(url, { max: 1 }))
    t.teardown(() => Promise.all(workers.map((w) => w.end({ timeout: 5 }))))
    const perWorker = 24
    let folding = true
    let folds = 0
    const folder = (async () => {
      const db = connect(url, { max: 1 })
      try {
        while (folding) {
          await db`select rhpool.fold_spend_journal()`
          folds++
        }
      } finally {
        await db.end({ timeout: 5 })
      }
    })()
    let counter = 0
    await Promise.all(
      workers.map(async (db, w) => {
        for (let i = 0; i < perWorker; i++) {
          const table = jobTables[(w + i) % jobTables.length]!
          await insertJob(db, table)
          const [c] = await claim(db, 1, 'spread')
          if (!c) continue
          const taskId = `19${String(++counter).padStart(17, '0')}`
          await runClaimed(db, c, taskId)
          const outcome = i % 6
          if (outcome === 0) {
            await db`select rhpool.finish_job(${c.job_table}, ${c.job_id}, ${taskId}, false, null, ${db.json({ consumeMoney: '0.30' })}, '805', 'out of memory')`
          } else if (outcome === 1) {
            // A completion rolled back: nothing of it may count.
            await db
              .begin(async (tx) => {
                await tx`select rhpool.finish_job(${c.job_table}, ${c.job_id}, ${taskId}, true, ${tx.json([{ url: 'https://out.example/x.png' }])}, ${tx.json({ consumeMoney: '9.99' })})`
                throw new Error('rolled back on purpose')
              })
              .catch((error: Error) => {
                if (error.message !== 'rolled back on purpose') throw error
              })
            await db`select rhpool.cancel_job(${c.job_table}, ${c.job_id})`
          } else if (outcome === 2) {
            // Coins are another unit: counted as a completion, not as money.
            await db`select rhpool.finish_job(${c.job_table}, ${c.job_id}, ${taskId}, true, ${db.json([{ url: 'https://out.example/x.png' }])}, ${db.json({ consumeMoney: '0', consumeCoins: '12' })})`
          } else {
            const money = `0.${String(w + 1)}${outcome}`
            await db`select rhpool.finish_job(${c.job_table}, ${c.job_id}, ${taskId}, true, ${db.json([{ url: 'https://out.example/x.png' }])}, ${db.json({ consumeMoney: money })})`
          }
        }
      })
    )
    folding = false
    await folder
    t.ok(folds > 0, `folds ran beside the completions (${folds})`)

    const truth = await fromJobRows(sql)
    t.equal(truth.length, accounts.length, 'every account completed jobs')
    t.ok(
      truth.every((s) => Number(s.money) > 0),
      'and spent money'
    )
    t.same(await kept(sql), truth, 'the hours + the journal = the completed job rows, per account (the journal folded or not)')
    t.same(await dashboardSpent(sql), truth, "the dashboard's completed and cost per account: the same")

    await sql`select rhpool.fold_spend_journal()`
    t.equal((await sql`select count(*)::int as n from rhpool.spend_journal`)[0]!.n, 0, 'a fold leaves no journal row')
    t.same(await kept(sql), truth, 'folded: the same figures')
    const [hours] = await sql`select count(*)::int as rows, count(distinct (account, hour))::int as keys from rhpool.spend_by_hour`
    t.equal(hours!.rows, hours!.keys, 'one row per account and hour')
  }
)

t.test('a fold while another runs returns 0 at once; a fold drops the hours past 48 h', async (t) => {
  const { url, sql } = await freshDatabase(t)
  await sql`insert into rhpool.spend_by_hour (account, hour, completed, money) values
              ('primary', date_trunc('hour', now() - interval '3 days'), 4, 1.5),
              ('primary', date_trunc('hour', now() - interval '2 hours'), 2, 0.5)`
  await sql`insert into rhpool.spend_journal (account, hour, money) values ('primary', date_trunc('hour', now()), 0.25)`
  const other = connect(url, { max: 1 })
  t.teardown(() => other.end({ timeout: 5 }))
  await sql.begin(async (tx) => {
    t.equal((await tx`select rhpool.fold_spend_journal() as n`)[0]!.n, 1, 'a fold in an open transaction folds the one journal row')
    t.equal((await other`select rhpool.fold_spend_journal() as n`)[0]!.n, 0, 'a second fold meanwhile returns 0 at once')
  })
  t.same(await kept(sql), [{ account: 'primary', completed: 3, money: 0.75 }], 'the last day: 2 + 1, the hour 3 days ago not counted')
  t.equal(
    (await sql`select count(*)::int as n from rhpool.spend_by_hour where hour < now() - interval '48 hours'`)[0]!.n,
    0,
    'the hour 3 days ago is gone'
  )
})
