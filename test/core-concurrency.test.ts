// Guarantees 1 and 2 under load: 19 connections at once insert, claim, run,
// release and complete thousands of jobs while another connection samples the
// in-flight count of every account.
import t from 'tap'
import { connect, freshDatabase, type Sql } from './helpers/db.ts'
import { insertJob, jobTables, setAccounts, type JobTable } from './helpers/jobs.ts'

const limits = { primary: 3, account_2: 2, account_3: 4, account_4: 1 } as const
const backlogSize = 2000
const lateInserts = 1000
const inserterCount = 6
const workerCount = 12

interface ClaimRecord {
  seq: number
  job_table: string
  job_id: string
  api_account: string
  claim_token: string
}

t.test('many clients at once: never over a limit, never claimed twice, strict FIFO', async (t) => {
  const { sql, url } = await freshDatabase(t)
  await setAccounts(
    sql,
    Object.entries(limits).map(([name, slots]) => ({ name, slots }))
  )
  await sql`create sequence test_claim_seq`

  // A backlog with mixed priorities and distinct creation times, committed before the run.
  const base = Date.UTC(2026, 0, 1)
  const backlog: Array<{ table: JobTable; id: string; priority: number; createdAt: number }> = []
  for (let i = 0; i < backlogSize; i++) {
    const table = jobTables[i % 4]!
    const priority = ((i * 7) % 3) - 1
    const createdAt = base + i * 1000
    backlog.push({ table, id: await insertJob(sql, table, { priority, createdAt: new Date(createdAt) }), priority, createdAt })
  }
  const fifo = [...backlog].sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))

  const clients: Sql[] = []
  const open = (): Sql => {
    const client = connect(url, { max: 1 })
    clients.push(client)
    return client
  }
  t.teardown(() => Promise.all(clients.map((c) => c.end({ timeout: 5 }))))

  let stop = false
  const claims: ClaimRecord[] = []
  const releases = new Map<string, number>()
  const overLimit: string[] = []
  let samples = 0

  const sampler = (async () => {
    const db = open()
    while (!stop) {
      const rows = await db`
        with in_flight as (
          select api_account from upscaler_jobs where status in ('claimed', 'submitting', 'outcome_unknown', 'running')
          union all select api_account from pose_changer_jobs where status in ('claimed', 'submitting', 'outcome_unknown', 'running')
          union all select api_account from veste_ai_jobs where status in ('claimed', 'submitting', 'outcome_unknown', 'running')
          union all select api_account from video_upscaler_jobs where status in ('claimed', 'submitting', 'outcome_unknown', 'running')
        )
        select a.name, a.slots,
               (select count(*)::int from rhpool.runs r where r.account = a.name) as slot_rows,
               (select count(*)::int from in_flight f where f.api_account = a.name) as jobs_in_flight
        from rhpool.accounts a`
      for (const row of rows) {
        if (row.slot_rows > row.slots || row.jobs_in_flight > row.slots) {
          overLimit.push(`${row.name}: ${row.slot_rows} slots held, ${row.jobs_in_flight} jobs in flight, limit ${row.slots}`)
        }
      }
      samples++
    }
  })()

  const inserters = Array.from({ length: inserterCount }, (_, n) =>
    (async () => {
      const db = open()
      for (let i = n; i < lateInserts; i += inserterCount) {
        // Lowest priority: a late job never overtakes the backlog.
        await insertJob(db, jobTables[i % 4]!, { priority: -5 })
      }
    })()
  )

  let taskCounter = 0
  const workers = Array.from({ length: workerCount }, (_, n) =>
    (async () => {
      const db = open()
      const holder = `worker-${n}`
      let idleRounds = 0
      while (idleRounds < 40) {
        const batch = (await db.begin(
          async (tx) => tx`
        select nextval('test_claim_seq')::int as seq, c.job_table, c.job_id, c.api_account, c.claim_token
        from rhpool.claim_account_slot(${1 + (n % 4)}, ${holder}, 60) with ordinality as c
        order by c.ordinality`
        )) as unknown as ClaimRecord[]
        if (batch.length === 0) {
          idleRounds++
          await new Promise((resolve) => setTimeout(resolve, 5))
          continue
        }
        idleRounds = 0
        claims.push(...batch)
        for (const c of batch) {
          const key = `${c.job_table}:${c.job_id}`
          const job = await db`select rhpool.begin_submission(${c.job_table}, ${c.job_id}, ${c.claim_token}, 30) as job`
          if (!job[0]!.job) throw new Error(`claim of ${key} was taken from ${holder}`)
          // One submission in seven is answered "account full": back to the queue in its place.
          if (++taskCounter % 7 === 0) {
            await db`select rhpool.release_to_queue(${c.job_table}, ${c.job_id}, ${c.claim_token}, 'TASK_QUEUE_MAXED')`
            releases.set(key, (releases.get(key) ?? 0) + 1)
            continue
          }
          const taskId = `19${String(taskCounter).padStart(17, '0')}`
          await db`select rhpool.record_submission(${c.job_table}, ${c.job_id}, ${c.claim_token}, ${taskId})`
          await db`select rhpool.finish_job(${c.job_table}, ${c.job_id}, ${taskId}, true, ${db.json([{ url: 'https://out.example/x.png' }])}, ${db.json({ consumeMoney: '0.05' })})`
        }
      }
    })()
  )

  await Promise.all(inserters)
  await Promise.all(workers)
  stop = true
  await sampler

  const total = backlogSize + lateInserts
  t.ok(samples > 50, `the sampler took ${samples} samples during the run`)
  t.same(overLimit.slice(0, 5), [], 'no sample ever saw an account over its limit')

  const [counts] = await sql`
    select
      (select count(*)::int from upscaler_jobs where status = 'completed') + (select count(*)::int from pose_changer_jobs where status = 'completed')
      + (select count(*)::int from veste_ai_jobs where status = 'completed') + (select count(*)::int from video_upscaler_jobs where status = 'completed') as completed,
      (select count(*)::int from rhpool.job_events) as events,
      (select count(distinct (job_table, job_id))::int from rhpool.job_events) as jobs_with_events,
      (select count(*)::int from rhpool.runs where account is not null) as slots_held,
      (select count(*)::int from rhpool.runs where status = 'queued') as queued`
  t.same(
    counts,
    { completed: total, events: total, jobs_with_events: total, slots_held: 0, queued: 0 },
    'every job completed once, one terminal event each, no slot left held'
  )

  const claimsPerJob = new Map<string, number>()
  for (const c of claims) claimsPerJob.set(`${c.job_table}:${c.job_id}`, (claimsPerJob.get(`${c.job_table}:${c.job_id}`) ?? 0) + 1)
  const doubleClaims = [...claimsPerJob].filter(([key, n]) => n !== (releases.get(key) ?? 0) + 1)
  t.same(doubleClaims.slice(0, 5), [], 'each job claimed exactly once per time it was put back')
  t.equal(claimsPerJob.size, total, 'every job was claimed')

  const firstClaims: string[] = []
  const seen = new Set<string>()
  for (const c of [...claims].sort((a, b) => a.seq - b.seq)) {
    const key = `${c.job_table}:${c.job_id}`
    if (!seen.has(key)) firstClaims.push(key)
    seen.add(key)
  }
  const expectedOrder = fifo.map((j) => `${j.table}:${j.id}`)
  t.same(firstClaims.slice(0, backlogSize), expectedOrder, 'the backlog started in exact global FIFO order, before any later job')

  const perAccount = await sql`select api_account, count(*)::int as n from rhpool.job_events group by 1 order by 1`
  t.ok(perAccount.length === 4, `all four accounts ran jobs: ${perAccount.map((r) => `${r.api_account}=${r.n}`).join(' ')}`)
})
