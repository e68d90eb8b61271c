// Limits learned, not guessed: the effective limit is the smallest of the
// configured slots, RunningHub's reported limit and what refusals showed; a
// refusal lowers it by one, a quiet spell raises it by one. Time is a parameter
// of the SQL that decides, so these tests set the time instead of sleeping.
import t from 'tap'
import { connect, freshDatabase, type Sql } from './helpers/db.ts'
import { claim, insertJob, jobStatus, setAccounts } from './helpers/jobs.ts'

const limitsAt = async (sql: Sql, at: string, name = 'primary') =>
  (
    await sql`select lim.configured, lim.reported, lim.learned, lim.effective, lim.reason
             from rhpool.accounts a cross join lateral rhpool.account_limits(a, ${at}::timestamptz) lim where a.name = ${name}`
  )[0]!

t.test('a refusal lowers the limit by one; each quiet spell probes it back up by one', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const t0 = '2026-03-01T12:00:00Z'
  t.match(
    await limitsAt(sql, t0),
    { configured: 3, reported: null, learned: null, effective: 3, reason: null },
    'nothing learned: the configured slots'
  )

  const [first] = await sql`select * from rhpool.learn_account_full('primary', '421: TASK_QUEUE_MAXED', ${t0}::timestamptz)`
  t.same(
    first,
    { limit_before: 3, limit_after: 2, cooldown_until: null },
    'lowered by one, and no cooldown: the lower limit is the back-off'
  )
  t.match(await limitsAt(sql, '2026-03-01T12:00:59Z'), {
    learned: 2,
    effective: 2,
    reason: /learned from a refusal \(421: TASK_QUEUE_MAXED\); probing 3 after 60 s/,
  })
  t.match(
    await limitsAt(sql, '2026-03-01T12:01:00Z'),
    { learned: null, effective: 3, reason: null },
    'after 60 s without a refusal: back to 3'
  )

  await sql`select * from rhpool.learn_account_full('primary', '421', ${t0}::timestamptz)`
  t.match(await limitsAt(sql, t0), { learned: 1, effective: 1 }, 'another refusal: 1')
  const [atOne] = await sql`select * from rhpool.learn_account_full('primary', '421', ${t0}::timestamptz)`
  t.match(atOne, { limit_before: 1, limit_after: 1 }, 'never below 1')
  t.equal((atOne!.cooldown_until as Date).toISOString(), '2026-03-01T12:00:05.000Z', 'refused at one slot, the whole account cools down')
  t.match(await limitsAt(sql, '2026-03-01T12:01:00Z'), { effective: 2 }, 'one probe step a quiet spell')
  t.match(await limitsAt(sql, '2026-03-01T12:02:00Z'), { effective: 3 })
  await sql`update rhpool.settings set value = '10' where key = 'limit_probe_after_seconds'`
  t.match(await limitsAt(sql, '2026-03-01T12:00:10Z'), { effective: 2 }, 'the quiet spell is a setting')

  await sql`select rhpool.record_account_health('primary', null, null, 2)`
  t.match(await limitsAt(sql, '2026-03-01T13:00:00Z'), {
    reported: 2,
    learned: null,
    effective: 2,
    reason: 'RunningHub reports concurrentLimit 2',
  })
  const [round] = await sql`select rhpool.forget_outgrown_limits(now()) as n`
  t.equal(round!.n, 1, 'maintenance clears a learned limit that grew back')
  t.same((await sql`select learned_limit, learned_at from rhpool.accounts`)[0], { learned_limit: null, learned_at: null })
})

t.test('admission and the slot cap count against the effective limit; status says why', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const ids = []
  for (let i = 0; i < 4; i++) ids.push(await insertJob(sql, 'upscaler_jobs', { createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) }))
  const claimed = await claim(sql, 10)
  t.equal(claimed.length, 3)
  // RunningHub refuses the third: its job goes back in its place, attempt given back.
  await sql`select rhpool.begin_submission(${claimed[2]!.job_table}, ${claimed[2]!.job_id}, ${claimed[2]!.claim_token}, 30)`
  const [until] =
    await sql`select rhpool.account_was_full(${claimed[2]!.job_table}, ${claimed[2]!.job_id}, ${claimed[2]!.claim_token}, 'primary', '421: TASK_QUEUE_MAXED') as until`
  t.equal(until!.until, null, 'no cooldown')
  t.match(await jobStatus(sql, 'upscaler_jobs', claimed[2]!.job_id), { status: 'queued', attempts: 0 })
  t.same(await claim(sql, 10), [], 'two in flight at a learned limit of 2: nothing more')
  await t.rejects(
    sql`update rhpool.runs set status = 'running', account = 'primary', claim_token = 0 where job_id = ${ids[3]!}`,
    /account primary is full \(2 of 2 slots in use\)/,
    'the trigger counts against the effective limit too'
  )

  const [status] = await sql`select rhpool.pool_status() as s`
  t.match(status!.s, {
    totalMaxSlots: 2,
    accounts: [
      {
        name: 'primary',
        running: 2,
        maxSlots: 2,
        available: 0,
        configuredSlots: 3,
        learnedLimit: 2,
        reportedConcurrency: null,
        limitReason: /^learned from a refusal/,
        nextProbeAt: String,
      },
    ],
  })
  const [board] = await sql`select rhpool.dashboard_data() as d`
  t.match(board!.d.accounts, [
    { name: 'primary', slots: 2, configuredSlots: 3, learnedLimit: 2, reportedLimit: null, limitReason: /^learned/ },
  ])

  await sql`update rhpool.accounts set learned_at = learned_at - interval '61 seconds'`
  const next = await claim(sql, 10)
  t.same(
    next.map((c) => c.job_id),
    [claimed[2]!.job_id],
    'after a quiet spell the probe admits one more, the refused job first (its place kept)'
  )
})

t.test('many claimers while the limit is lowered and raised: no admission ever exceeds the effective limit', async (t) => {
  const { sql, url } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 6 },
    { name: 'account_2', slots: 4 },
  ])
  for (let i = 0; i < 400; i++) await insertJob(sql, i % 2 ? 'upscaler_jobs' : 'veste_ai_jobs')
  const clients: Sql[] = []
  const open = () => {
    const c = connect(url, { max: 1 })
    clients.push(c)
    return c
  }
  t.teardown(() => Promise.all(clients.map((c) => c.end({ timeout: 5 }))))

  const deadline = Date.now() + 4000
  const violations: string[] = []
  const seenLimits = new Set<string>()
  let admissions = 0
  const claimers = Array.from({ length: 10 }, (_, n) =>
    (async () => {
      const db = open()
      while (Date.now() < deadline) {
        const got = await db.begin(async (tx) => {
          const rows = await tx`select * from rhpool.claim_account_slot(2, ${`w${n}`})`
          // Still inside the claim's transaction, so still under the admission lock:
          // what was just admitted must fit the limit in force.
          for (const account of new Set(rows.map((r) => r.api_account as string))) {
            const [row] =
              await tx`select (select count(*)::int from rhpool.runs where account is not null and account = ${account}) as held, rhpool.effective_limit(${account}) as limit`
            seenLimits.add(`${account}:${row!.limit}`)
            if (row!.held > row!.limit) violations.push(`${account}: ${row!.held} held, effective limit ${row!.limit}`)
          }
          return rows
        })
        admissions += got.length
        for (const r of got) await db`select rhpool.release_to_queue(${r.job_table}, ${r.job_id}, ${r.claim_token}, null)`
      }
    })()
  )
  const changer = (async () => {
    const db = open()
    let step = 0
    while (Date.now() < deadline) {
      const account = step % 2 ? 'primary' : 'account_2'
      if (step % 5 === 4)
        await db`update rhpool.accounts set learned_at = learned_at - interval '1 hour' where name = ${account} and learned_at is not null`
      else if (step % 7 === 6) await db`select rhpool.record_account_health(${account}, null, null, ${1 + (step % 5)})`
      else await db`select * from rhpool.learn_account_full(${account}, '421')`
      step++
    }
    return step
  })()
  const [changes] = await Promise.all([changer, ...claimers])
  t.same(violations, [], `${admissions} admissions, ${changes} limit changes, never over`)
  t.ok(admissions > 100, 'the claimers really competed')
  const primary = [...seenLimits].filter((s) => s.startsWith('primary:')).map((s) => Number(s.split(':')[1]))
  t.ok(
    new Set(primary).size >= 3 && Math.min(...primary) <= 3 && Math.max(...primary) === 6,
    `admissions ran at lowered and raised limits (${primary.sort().join(',')})`
  )
})
