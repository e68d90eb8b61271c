// A held callback handed to the process that received it (hand_over_claim,
// 310-confirmation.sql): only a claim plainly its attempt's — it names the
// task the job runs (or one no job holds, before the job's is recorded), on
// that attempt, on an account the process can confirm for — is held already
// leased to it and answered back; every
// other claim is held as before, for claim_unconfirmed to refuse or lease.
// A handed claim is never leased twice, and a lease that runs out (the process
// died) leaves it to any dispatcher. Only the account's recorded key is one to
// ask RunningHub with, on either path: a stale key would hear "no such task"
// and refute a true callback.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'
import { claim, fingerprintOf, insertJob, runClaimed, setAccounts, type Claim } from './helpers/jobs.ts'
import { CallbackConfirmations, CallbackTaker, claimUnconfirmed, type HandOverTerms } from '../src/db/rhpool.ts'
import { Confirmer } from '../src/dispatcher/confirmer.ts'
import type { AccountConfig, Config } from '../src/config/index.ts'
import { createLogger } from '../src/log.ts'

const success = (url: string) => ({ status: 'SUCCESS', outputs: [{ url, outputType: 'png' }] })
const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve))
}
const primaryKey = { name: 'primary', fingerprint: fingerprintOf('primary') }
const terms: HandOverTerms = { keys: [primaryKey], leaseSeconds: 30 }

async function runningJobs(sql: Parameters<typeof setAccounts>[0], n: number, prefix: string) {
  await setAccounts(sql, [{ name: 'primary', slots: n }])
  for (let i = 0; i < n; i++) await insertJob(sql, 'upscaler_jobs')
  const claims = (await claim(sql, n)) as Claim[]
  for (const [i, c] of claims.entries()) await runClaimed(sql, c, `${prefix}${i}`)
  // Each with the address its callback names (its table, id, attempt 1 and task).
  return claims.map((c, i) => ({
    claim: c,
    taskId: `${prefix}${i}`,
    at: { jobTable: c.job_table, jobId: c.job_id, attempt: 1, taskId: `${prefix}${i}` },
  }))
}

t.test('a claim plainly its attempt’s is held leased to the receiving process and answered back', async (t) => {
  const { sql } = await freshDatabase(t)
  const [job] = await runningJobs(sql, 1, '19100000000000001')
  const taker = new CallbackTaker(sql as never, () => terms)
  const at = job!.at
  const taken = await taker.take('receive_claim', at, success('https://out/0.png'), '{}')
  t.equal(taken.outcome, 'unconfirmed', 'the delivery is answered as any held claim is')
  t.match(taken.handed, { job_table: 'upscaler_jobs', job_id: job!.claim.job_id, api_account: 'primary', task_id: job!.taskId })
  const [held] = await sql`select id::text, detail, resolved_at, confirm_after - received_at as lease from rhpool.webhook_deliveries`
  t.equal(held!.id, taken.handed!.delivery_id, 'the handed delivery id is the held row')
  t.equal(held!.detail, 'handed to the receiving process to confirm with query')
  t.equal(held!.resolved_at, null, 'held, not decided: RunningHub is still to be asked')
  t.equal(held!.lease, '00:00:30', 'leased for the lease asked')
  t.same(await claimUnconfirmed(sql as never, [primaryKey], 50, 30), [], 'no dispatcher round takes a claim leased to another process')

  const confirmations = new CallbackConfirmations(sql as never, 1)
  t.equal(await confirmations.confirm(taken.handed!.delivery_id, success('https://rh/0.png')), 'applied', 'RunningHub’s answer applied')
  const [done] = await sql`select status, output_url from upscaler_jobs`
  t.same([done!.status, done!.output_url], ['completed', 'https://rh/0.png'])
})

t.test('a callback that beats the create answer (no task recorded yet) is handed too, unless another job holds its task', async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 2 }])
  for (let i = 0; i < 2; i++) await insertJob(sql, 'upscaler_jobs')
  const [first, second] = (await claim(sql, 2)) as Claim[]
  await runClaimed(sql, first!, '1910000000000000700')
  // The second is sent (submitting) but RunningHub's answer is not recorded yet.
  await sql`select rhpool.begin_submission(${second!.job_table}, ${second!.job_id}, ${second!.claim_token}, 30)`
  const taker = new CallbackTaker(sql as never, () => terms)
  const at = { jobTable: 'upscaler_jobs', jobId: second!.job_id, attempt: 1 }
  const othersTask = await taker.take('receive_claim', { ...at, taskId: '1910000000000000700' }, success('https://x.png'), '{}')
  t.same(othersTask, { outcome: 'task_mismatch', handed: null }, 'a task another job holds: refused on arrival, as before')
  const own = await taker.take('receive_claim', { ...at, taskId: '1910000000000000701' }, success('https://x.png'), '{}')
  t.equal(own.outcome, 'unconfirmed')
  t.match(own.handed, { job_id: second!.job_id, task_id: '1910000000000000701', api_account: 'primary' }, 'handed over')
})

t.test('every other claim is held unleased for the rounds, which refuse or lease it as before', async (t) => {
  const { sql } = await freshDatabase(t)
  const jobs = await runningJobs(sql, 4, '19100000000000002')
  const taker = new CallbackTaker(sql as never, () => terms)
  const [a, b, c, d] = jobs.map((j) => j.at)
  // A process that can confirm only for account 'other' (the jobs run on 'primary').
  const elsewhere = new CallbackTaker(sql as never, () => ({
    keys: [{ name: 'other', fingerprint: fingerprintOf('other') }],
    leaseSeconds: 30,
  }))
  const cases = [
    // (No earlier attempt can be made here without a retry; a later one is as plainly not this attempt.)
    { what: 'another attempt than the job’s', at: { ...a!, attempt: 2 }, outcome: 'unconfirmed' },
    { what: 'no task id', at: { ...b!, taskId: null }, outcome: 'unconfirmed' },
    { what: 'another task than the job runs', at: { ...c!, taskId: '1910000000000000299' }, outcome: 'task_mismatch' },
    { what: 'an account this process has no key for', at: d!, outcome: 'unconfirmed', taker: elsewhere },
  ]
  const taken = await Promise.all(cases.map((k) => (k.taker ?? taker).take('receive_claim', k.at, success('https://out/x.png'), '{}')))
  for (const [i, k] of cases.entries()) {
    t.equal(taken[i]!.outcome, k.outcome, `${k.what}: ${k.outcome}`)
    t.equal(taken[i]!.handed, null, `${k.what}: not handed over`)
  }
  const leased = await sql`select count(*)::int as n from rhpool.webhook_deliveries where confirm_after is not null`
  t.equal(leased[0]!.n, 0, 'none of them is leased')
  const claimed = await claimUnconfirmed(sql as never, [primaryKey], 50, 30)
  t.same(
    claimed.map((r) => r.job_id).sort(),
    [a!.jobId, d!.jobId].sort(),
    'the rounds refuse the taskless claim and lease the others, as they always have'
  )
  const refused = await sql`select resolution from rhpool.webhook_deliveries where resolution like 'refuted%' order by id`
  t.same(
    refused.map((r) => r.resolution),
    ['refuted: the callback names no task']
  )
})

t.test('a job already finished: the claim is a duplicate, not handed', async (t) => {
  const { sql } = await freshDatabase(t)
  const [job] = await runningJobs(sql, 1, '19100000000000003')
  const at = job!.at
  const trusting = new CallbackTaker(sql as never)
  t.equal((await trusting.take('apply_callback', at, success('https://out/0.png'), '{}')).outcome, 'applied')
  const taker = new CallbackTaker(sql as never, () => terms)
  t.same(await taker.take('receive_claim', at, success('https://out/0.png'), '{}'), { outcome: 'duplicate', handed: null })
})

t.test('a handed claim whose lease ran out (its process died) is any dispatcher’s, once', async (t) => {
  const { sql } = await freshDatabase(t)
  const [job] = await runningJobs(sql, 1, '19100000000000004')
  const taker = new CallbackTaker(sql as never, () => terms)
  const at = job!.at
  const taken = await taker.take('receive_claim', at, success('https://out/0.png'), '{}')
  t.ok(taken.handed, 'handed over')
  await sql`update rhpool.webhook_deliveries set confirm_after = now() - interval '1 second'`
  const claimed = await claimUnconfirmed(sql as never, [primaryKey], 50, 30)
  t.same(
    claimed.map((r) => r.delivery_id),
    [taken.handed!.delivery_id],
    'the lease ran out: a round leases it'
  )
  t.same(await claimUnconfirmed(sql as never, [primaryKey], 50, 30), [], 'and no second round does')
})

t.test('no terms, or no accounts in them: nothing is handed', async (t) => {
  const { sql } = await freshDatabase(t)
  const jobs = await runningJobs(sql, 2, '19100000000000005')
  const [a, b] = jobs.map((j) => j.at)
  t.same(await new CallbackTaker(sql as never).take('receive_claim', a!, success('https://x.png'), '{}'), {
    outcome: 'unconfirmed',
    handed: null,
  })
  const stopping = new CallbackTaker(sql as never, () => ({ keys: [], leaseSeconds: 30 }))
  t.same(await stopping.take('receive_claim', b!, success('https://x.png'), '{}'), { outcome: 'unconfirmed', handed: null })
  const leased = await sql`select count(*)::int as n from rhpool.webhook_deliveries where confirm_after is not null`
  t.equal(leased[0]!.n, 0)
})

t.test('a confirmer that is stopping takes nothing more and gives back the leases it has not used', async (t) => {
  const { sql } = await freshDatabase(t)
  const [job] = await runningJobs(sql, 1, '19100000000000006')
  const taken = await new CallbackTaker(sql as never, () => terms).take('receive_claim', job!.at, success('https://x.png'), '{}')
  const confirmer = new Confirmer({
    sql: sql as never,
    client: () => {
      throw new Error('a stopping confirmer must not ask RunningHub')
    },
    accounts: () => new Map([['primary', { name: 'primary', fingerprint: fingerprintOf('primary') } as AccountConfig]]),
    log: createLogger('silent'),
    config: { dispatcher: { requestTimeoutMs: 2000, pollIntervalMs: 60_000 } } as Config,
  })
  t.same(confirmer.keysTaking(), [], 'not started: no account is offered to the route')
  await confirmer.stop()
  t.same(confirmer.keysTaking(), [], 'stopping: none either')
  // A batch the route had sent before the stop comes back with a handed claim.
  confirmer.take(taken.handed!)
  await confirmer.stop()
  const claimed = await claimUnconfirmed(sql as never, [primaryKey], 50, 30)
  t.same(
    claimed.map((r) => r.delivery_id),
    [taken.handed!.delivery_id],
    'its lease given back: a dispatcher takes it now, not after the lease'
  )
})

t.test('a confirmer takes hand-overs only while idle: a callback that comes while it confirms is left to the next round', async (t) => {
  const { sql } = await freshDatabase(t)
  const [job] = await runningJobs(sql, 1, '19100000000000008')
  // RunningHub's query, answered when the test says so.
  let askedNow!: () => void
  const asked = new Promise<void>((resolve) => (askedNow = resolve))
  let answer!: (task: Record<string, unknown>) => void
  const client = {
    query: () =>
      new Promise((resolve) => {
        answer = (task) => resolve({ ok: true, value: task })
        askedNow()
      }),
  }
  const confirmer = new Confirmer({
    sql: sql as never,
    client: () => client as never,
    accounts: () => new Map([['primary', { name: 'primary', apiKey: 'k', fingerprint: fingerprintOf('primary') } as AccountConfig]]),
    log: createLogger('silent'),
    config: { dispatcher: { requestTimeoutMs: 2000, pollIntervalMs: 600_000 } } as Config,
  })
  await confirmer.start()
  t.teardown(() => confirmer.stop())
  // Its first round (on listening) looks for held callbacks; then it is idle.
  await until(() => confirmer.keysTaking().length > 0)
  t.same(confirmer.keysTaking(), [primaryKey], 'idle: its accounts are offered')
  const taken = await new CallbackTaker(sql as never, () => ({ keys: confirmer.keysTaking(), leaseSeconds: 30 })).take(
    'receive_claim',
    job!.at,
    success('https://x.png'),
    '{}'
  )
  confirmer.take(taken.handed!)
  await asked
  t.same(confirmer.keysTaking(), [], 'asking RunningHub: none offered, the next callbacks are held for a round')
  answer({ status: 'SUCCESS', results: [{ url: 'https://rh/x.png', outputType: 'png' }] })
  for (;;) {
    const [row] = await sql`select resolution from rhpool.webhook_deliveries where id = ${taken.handed!.delivery_id}`
    if (row!.resolution !== null) {
      t.match(row!.resolution, /^confirmed: applied/, 'RunningHub’s answer applied')
      break
    }
    await new Promise((r) => setImmediate(r))
  }
  await until(() => confirmer.keysTaking().length > 0)
  t.same(confirmer.keysTaking(), [primaryKey], 'idle again: offered again')
})

t.test('a key that is not the account’s recorded one is never asked with: not handed over, not claimed', async (t) => {
  const { sql } = await freshDatabase(t)
  const [job] = await runningJobs(sql, 1, '19100000000000009')
  // This process still holds primary's old key: the account now records another.
  const staleKey = { name: 'primary', fingerprint: 'fp_an_old_key' }
  const taken = await new CallbackTaker(sql as never, () => ({ keys: [staleKey], leaseSeconds: 30 })).take(
    'receive_claim',
    job!.at,
    success('https://x.png'),
    '{}'
  )
  t.same(taken, { outcome: 'unconfirmed', handed: null }, 'held for a process with the recorded key')
  t.same(await claimUnconfirmed(sql as never, [staleKey], 50, 30), [], 'a round with the stale key does not take it')
  t.same(
    (await claimUnconfirmed(sql as never, [primaryKey], 50, 30)).map((r) => r.job_id),
    [job!.claim.job_id],
    'a round with the recorded key does'
  )
  await t.rejects(
    sql`select * from rhpool.claim_unconfirmed(array['primary'], array[]::text[], 50, 30)`,
    /claim_unconfirmed: accounts and key_fingerprints must have one entry per account \(got 1 and 0\)/,
    'names and fingerprints that do not line up are refused by name'
  )
})
