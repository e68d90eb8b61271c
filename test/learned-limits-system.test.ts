// A RunningHub that allows fewer tasks than configured, over real HTTP: rhpool
// learns the real limit from the first refusal (queue/status never answers) or
// from queue/status (where it answers), never runs over it, and fails nothing.
import t from 'tap'
import { insertJob, jobTables } from './helpers/jobs.ts'
import { startSystem, testKeys } from './helpers/system.ts'

t.test('configured 3, RunningHub allows 2, queue/status never answers: learned from the refusals', async (t) => {
  const sys = await startSystem(t, { slots: [3], simConcurrency: 2, sim: { taskDurationMs: 150, queueStatus: 'notFound' } })
  const ids = []
  for (let i = 0; i < 30; i++) ids.push(await insertJob(sys.db.sql, jobTables[i % 4]!))
  await sys.waitFor(
    'all 30 jobs completed',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n === 30,
    60_000
  )
  const refused = sys.sim.ledger.submissions.filter((s) => s.outcome === '421').length
  t.ok(refused >= 1 && refused <= 2, `refused submissions: ${refused} (each 421 lowers the limit instead of cooling the account)`)
  t.equal(sys.sim.ledger.concurrency(testKeys[0]!).maxConcurrency, 2, 'never more than RunningHub allows')
  const attempts = await sys.db.sql`select attempts, count(*)::int as n from rhpool.jobs group by attempts`
  t.same(attempts, [{ attempts: 1, n: 30 }], 'a refusal never spends an attempt')
  const status = await (await fetch(`${sys.adminUrl}/status`)).json()
  t.match(status.accounts[0], {
    name: 'primary',
    maxSlots: 2,
    configuredSlots: 3,
    learnedLimit: 2,
    reportedConcurrency: null,
    limitReason: /^learned from a refusal \(421/,
  })
  const metrics = await (await fetch(`${sys.adminUrl}/metrics`)).text()
  t.match(metrics, /rhpool_account_limit\{account="primary",kind="effective"\} 2/)
  t.match(metrics, /rhpool_account_limit\{account="primary",kind="configured"\} 3/)
  t.match(metrics, /rhpool_account_limited_by\{account="primary",by="learned"\} 1/)
})

t.test('configured 3, RunningHub reports 2: the reported limit counts, nothing is refused', async (t) => {
  const sys = await startSystem(t, { slots: [3], simConcurrency: 2, sim: { taskDurationMs: 150 } })
  await sys.waitFor(
    'the health probe to record the reported limit',
    async () => (await sys.db.sql`select reported_concurrency from rhpool.accounts where name = 'primary'`)[0]?.reported_concurrency === 2
  )
  for (let i = 0; i < 12; i++) await insertJob(sys.db.sql, jobTables[i % 4]!)
  await sys.waitFor(
    'all 12 jobs completed',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n === 12,
    60_000
  )
  t.equal(sys.sim.ledger.submissions.filter((s) => s.outcome === '421').length, 0, 'no refusals')
  const [row] = await sys.db.sql`select max_slots, configured_slots, limit_reason from rhpool.account_status`
  t.same(row, { max_slots: 2, configured_slots: 3, limit_reason: 'RunningHub reports concurrentLimit 2' })
})
