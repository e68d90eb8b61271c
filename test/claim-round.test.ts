// Claims in the database: rhpool.claim_round() (pg_cron runs it every minute) gives
// queued jobs their account with no dispatcher awake; a dispatcher holding the
// account's key adopts those claims and submits them; a claim nobody adopts goes back
// to the queue with its attempt given back.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { insertJob, setAccounts } from './helpers/jobs.ts'
import { startSystem, tasksPerJob } from './helpers/system.ts'
import { loadConfig } from '../src/config/index.ts'
import { syncAccounts } from '../src/dispatcher/sync-accounts.ts'
import { createLogger } from '../src/log.ts'
import { startService } from '../src/service.ts'

t.test('a claim round assigns accounts in the database; a claim nobody adopts goes back, its attempt given back', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [
    { name: 'primary', slots: 2 },
    { name: 'account_2', slots: 1 },
  ])
  const ids = []
  for (let i = 0; i < 4; i++) ids.push(await insertJob(sql, 'upscaler_jobs', { createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) }))
  const [round] = await sql`select rhpool.claim_round() as n`
  t.equal(round!.n, 3, 'three free slots, three claims')
  const rows =
    await sql`select j.id, j.status, j.api_account, r.holder from upscaler_jobs j join rhpool.runs r on r.job_id = j.id order by j.created_at`
  t.same(
    rows.map((r) => [r.status, r.api_account, r.holder]),
    [
      ['claimed', 'primary', null],
      ['claimed', 'primary', null],
      ['claimed', 'account_2', null],
      ['queued', null, null],
    ],
    'oldest first, fill-first, each with its account and no holder yet'
  )

  const adopted = await sql`select * from rhpool.adopt_claims('dispatcher-a', ${['account_2']}::text[], 10)`
  t.same(
    adopted.map((a) => [a.job_id, a.api_account]),
    [[ids[2], 'account_2']],
    'a dispatcher adopts only the claims on accounts it holds'
  )

  await sql`select rhpool.run_maintenance(now() + interval '10 minutes')`
  const after =
    await sql`select j.status, j.attempts, j.api_account, r.status as run_status, r.attempts as run_attempts from upscaler_jobs j join rhpool.runs r on r.job_id = j.id order by j.created_at`
  t.same(
    after.slice(0, 2).map((r) => [r.status, r.attempts, r.api_account, r.run_status, r.run_attempts]),
    [
      ['queued', 0, null, 'queued', 0],
      ['queued', 0, null, 'queued', 0],
    ],
    'the unadopted claims went back, their attempt given back (nothing was tried)'
  )
  t.equal(after[2]!.run_attempts, 1, "the adopted one expired like any dispatcher's claim: an attempt spent")
  const log = await sql`select action from rhpool.maintenance_log order by id`
  t.same(log.map((l) => l.action).sort(), ['lease_expired_requeued', 'unadopted_claim_requeued', 'unadopted_claim_requeued'])
  const [place] = await sql`select rhpool.queue_position('upscaler_jobs', ${ids[0]!}) as p`
  t.equal(place!.p, 1, 'and kept their place')
})

t.test('a dispatcher that starts after a claim round submits what the database claimed, then claims for itself', async (t) => {
  const sys = await startSystem(t, { slots: [2, 1], inProcess: false, sim: { taskDurationMs: 100 } })
  const ids = []
  // The accounts as an earlier dispatcher left them (its keys recorded); none is running now.
  await syncAccounts(sys.db.sql, sys.config.accounts)
  for (let i = 0; i < 5; i++) ids.push(await insertJob(sys.db.sql, 'veste_ai_jobs'))
  await sys.db.sql`select rhpool.claim_round()`
  const claimedByRound = await sys.db
    .sql`select job_id, account from rhpool.runs where status = 'claimed' and holder is null order by job_id`
  t.equal(claimedByRound.length, 3, 'no process awake: three jobs got their account in the database')

  const service = await startService(loadConfig(sys.env), createLogger('silent'))
  t.teardown(() => service.stop())
  await sys.waitFor(
    'every job to complete',
    async () => (await sys.db.sql`select count(*)::int as n from veste_ai_jobs where status = 'completed'`)[0]!.n === 5
  )
  for (const c of claimedByRound) {
    const [job] = await sys.db.sql`select api_account from veste_ai_jobs where id = ${c.job_id}`
    t.equal(job!.api_account, c.account, `${c.job_id} ran on the account the claim round gave it`)
  }
  t.same([...tasksPerJob(sys.sim).values()], [1, 1, 1, 1, 1], 'one task per job')
  const [unadopted] = await sys.db.sql`select count(*)::int as n from rhpool.maintenance_log where action = 'unadopted_claim_requeued'`
  t.equal(unadopted!.n, 0, 'every claim was adopted, none expired')
})

t.test(
  "a dispatcher's claim adopts the claim round's claims first, then claims anew, each with its row and tool, in one call",
  async (t) => {
    const { sql } = await freshDatabase(t)
    await setAccounts(sql, [
      { name: 'primary', slots: 1 },
      { name: 'account_2', slots: 3 },
    ])
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i))
    const ids = [
      await insertJob(sql, 'upscaler_jobs', { createdAt: at(0) }),
      await insertJob(sql, 'veste_ai_jobs', { createdAt: at(1) }),
      await insertJob(sql, 'upscaler_jobs', { createdAt: at(2) }),
      await insertJob(sql, 'pose_changer_jobs', { createdAt: at(3) }),
      await insertJob(sql, 'upscaler_jobs', { createdAt: at(4) }),
    ]
    await sql`select rhpool.claim_round(2)`
    // A claim round's claims, on account primary (job 0) and account_2 (job 1); the dispatcher holds account_2 only.
    const got = await sql`select * from rhpool.claim_for_dispatcher('dispatcher-a', ${['account_2']}::text[], 10)`
    t.same(
      got.map((c) => [c.job_table, c.job_id, c.api_account]),
      [
        ['veste_ai_jobs', ids[1], 'account_2'],
        ['upscaler_jobs', ids[2], 'account_2'],
        ['pose_changer_jobs', ids[3], 'account_2'],
      ],
      "the claim round's claim on its account first, then the oldest queued jobs up to the account's free slots"
    )
    for (const c of got) {
      const [run] = await sql`select holder, claim_token::text as token, status from rhpool.runs where job_id = ${c.job_id}`
      t.same(
        [run!.holder, run!.token, run!.status],
        ['dispatcher-a', String(c.claim_token), 'claimed'],
        `${c.job_table}: the claim is this holder's`
      )
      t.equal(c.job.id, c.job_id, `${c.job_table}: its own row`)
      t.same([c.job.status, c.job.api_account], ['claimed', 'account_2'], `${c.job_table}: the row as the claim left it`)
      const [tool] = await sql`select tool, app from rhpool.tools where job_table = ${c.job_table}`
      t.same([c.tool.tool, c.tool.app], [tool!.tool, tool!.app], `${c.job_table}: its tool's definition`)
    }
    t.ok('input_file_name' in got[1]!.job, "a table's own columns are in its row")
    const [other] = await sql`select holder from rhpool.runs where job_id = ${ids[0]!}`
    t.equal(other!.holder, null, 'a claim on an account it does not hold is left for its own dispatcher')

    t.same(await sql`select * from rhpool.claim_for_dispatcher('dispatcher-a', ${['account_2']}::text[], 10)`, [], 'no free slot: nothing')
    await t.rejects(sql`select * from rhpool.claim_for_dispatcher(null, ${['account_2']}::text[], 10)`, /claimed_by is required/)
  }
)
