// Several dispatchers with different key sets against one database: each
// declares the keys it holds (presence, on a heartbeat), none disables
// another's accounts, each claims only where it holds the recorded key, and an
// account takes work exactly while some live dispatcher holds its key —
// through rolling deploys in either order, a dispatcher killed outright, and a
// dispatcher that brings a different key for a name already in use.
import t from 'tap'
import { Writable } from 'node:stream'
import { fingerprintOf, holdKeys, insertJob, jobTables, setAccounts, claim } from './helpers/jobs.ts'
import { freshDatabase } from './helpers/db.ts'
import { spawnRhpool, startSystem, tasksPerJob, testKeys, type System } from './helpers/system.ts'
import { keyFingerprint } from '../src/config/accounts.ts'
import { loadConfig } from '../src/config/index.ts'
import { createLogger } from '../src/log.ts'
import { startService, type Service } from '../src/service.ts'
import { fingerprint as simFingerprint } from '../simulator/index.ts'

interface TestLike {
  teardown(fn: () => unknown): void
}

/** Heartbeat every 250 ms, stale after 12 missed: a dead dispatcher stops counting within 3 s, a live one on a busy machine does not lapse. */
const heartbeat = { RHPOOL_HEARTBEAT_INTERVAL_MS: '250', RHPOOL_HEARTBEAT_STALE_AFTER: '12' }

const keyVariable = (position: number): string => (position === 1 ? 'RUNNINGHUB_API_KEY' : `RUNNINGHUB_API_KEY_${position}`)
const accountOf = (position: number): string => (position === 1 ? 'primary' : `account_${position}`)

/** sys.env with exactly these accounts' keys (1 = primary = testKeys[0], …) and their slots, or other keys by position. */
function envWith(sys: System, keys: Record<number, string>, extra: Record<string, string> = {}): Record<string, string> {
  const base = Object.fromEntries(
    Object.entries(sys.env).filter(([k]) => !k.startsWith('RUNNINGHUB_API_KEY') && !k.startsWith('RUNNINGHUB_SLOTS_'))
  )
  const chosen = Object.entries(keys).flatMap(([p, key]) => [
    [keyVariable(Number(p)), key],
    [`RUNNINGHUB_SLOTS_${p}`, sys.env[`RUNNINGHUB_SLOTS_${p}`]!],
  ])
  return { ...base, ...heartbeat, RHPOOL_HTTP: 'false', ...Object.fromEntries(chosen), ...extra }
}
const ownKeys = (...positions: number[]): Record<number, string> => Object.fromEntries(positions.map((p) => [p, testKeys[p - 1]!]))

interface RunningDispatcher {
  service: Service
  logs: string[]
  /** Accounts this dispatcher sent a task for (its "submitting" lines). */
  submittedOn(): Set<string>
  /** Claims it had to release for want of a key (the guard in submit.ts, old and new wording). */
  releases(): number
  stop(): Promise<void>
}

async function startDispatcher(t: TestLike, env: Record<string, string>): Promise<RunningDispatcher> {
  const logs: string[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk))
      done()
    },
  })
  const service = await startService(loadConfig(env), createLogger('debug', sink))
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await service.stop()
  }
  t.teardown(stop)
  const lines = () =>
    logs
      .flatMap((chunk) => chunk.split('\n'))
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  return {
    service,
    logs,
    submittedOn: () =>
      new Set(
        lines()
          .filter((l) => l.msg === 'submitting')
          .map((l) => String(l.account))
      ),
    releases: () => lines().filter((l) => /claimed a job on an account/.test(String(l.msg))).length,
    stop,
  }
}

/** The webhook route alone, with every key so it can confirm any account's callbacks (it is no dispatcher: it holds no presence). */
async function webhookOnly(t: TestLike, sys: System): Promise<Service> {
  const service = await startService(loadConfig({ ...sys.env, RHPOOL_DISPATCHER: 'false' }), createLogger('silent'))
  t.teardown(() => service.stop())
  return service
}

const holders = async (sys: System): Promise<Record<string, number>> =>
  Object.fromEntries((await sys.db.sql`select name, key_holders from rhpool.account_status`).map((r) => [r.name, r.key_holders]))

const completed = async (sys: System): Promise<number> =>
  (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n

/** Every accepted task was sent with the key of the account recorded on its job. */
async function tasksUsedTheirAccountsKey(sys: System): Promise<string[]> {
  const keyOf = new Map(testKeys.map((key, i) => [accountOf(i + 1), simFingerprint(key)]))
  const wrong: string[] = []
  for (const s of sys.sim.ledger.submissions) {
    if (!s.taskId || !s.jobRef) continue
    const [table, id] = s.jobRef.split('/').slice(3, 5)
    const [job] = await sys.db.sql`select api_account from rhpool.jobs where job_table = ${table!} and id = ${id!}`
    if (keyOf.get(String(job?.api_account)) !== s.apiKey) wrong.push(`${table}/${id} on ${job?.api_account} sent with ${s.apiKey}`)
  }
  return wrong
}

t.test(
  "two dispatchers with different key sets (1+2 and 2+3) at once: nobody disables the other's accounts, each claims only where it holds the key",
  async (t) => {
    const slots = [2, 2, 2]
    const sys = await startSystem(t, { slots, inProcess: false, sim: { taskDurationMs: 150 } })
    await webhookOnly(t, sys)
    const a = await startDispatcher(t, envWith(sys, ownKeys(1, 2)))
    const b = await startDispatcher(t, envWith(sys, ownKeys(2, 3)))
    t.same(await holders(sys), { primary: 1, account_2: 2, account_3: 1 }, 'each account is held by the dispatchers that have its key')

    const total = 60
    for (let i = 0; i < total; i++) await insertJob(sys.db.sql, jobTables[i % 4]!)
    await sys.waitFor(`${total} jobs completed`, async () => (await completed(sys)) === total)

    t.same(await sys.db.sql`select name from rhpool.accounts where not enabled`, [], 'no account disabled')
    t.same(await holders(sys), { primary: 1, account_2: 2, account_3: 1 }, 'and every one still held')
    t.ok(
      [...a.submittedOn()].every((name) => ['primary', 'account_2'].includes(name)),
      `A submitted only on its accounts: ${[...a.submittedOn()]}`
    )
    t.ok(
      [...b.submittedOn()].every((name) => ['account_2', 'account_3'].includes(name)),
      `B submitted only on its accounts: ${[...b.submittedOn()]}`
    )
    t.ok(a.submittedOn().size > 0 && b.submittedOn().size > 0, 'both dispatchers did work')
    const perAccount = Object.fromEntries(
      (await sys.db.sql`select api_account, count(*)::int as n from rhpool.jobs group by 1`).map((r) => [r.api_account, r.n])
    )
    t.ok(
      perAccount.primary > 0 && perAccount.account_2 > 0 && perAccount.account_3 > 0,
      `all three accounts ran jobs: ${JSON.stringify(perAccount)}`
    )
    t.same(await tasksUsedTheirAccountsKey(sys), [], 'every task was submitted with the key of the account recorded on its job')
    t.equal(a.releases() + b.releases(), 0, 'no claim on an account without its key, so nothing released')
    const perJob = tasksPerJob(sys.sim)
    t.same(
      [...perJob.values()].filter((n) => n !== 1),
      [],
      'one task per job'
    )
    slots.forEach((limit, i) =>
      t.ok(sys.sim.ledger.concurrency(testKeys[i]!).maxConcurrency <= limit, `${accountOf(i + 1)} never over its ${limit} slots`)
    )
  }
)

t.test(
  'rolling deploy adding key 2, old stops last: account_2 takes work once the new dispatcher is live, and keeps taking it after the old one stops',
  async (t) => {
    const sys = await startSystem(t, { slots: [1, 1], inProcess: false, sim: { taskDurationMs: 150 } })
    await webhookOnly(t, sys)
    const old = await startDispatcher(t, envWith(sys, ownKeys(1)))
    t.same(await holders(sys), { primary: 1 }, 'before the deploy: only primary, held by the old dispatcher')

    const fresh = await startDispatcher(t, envWith(sys, ownKeys(1, 2)))
    t.same(await holders(sys), { primary: 2, account_2: 1 }, 'the new dispatcher holds both keys')
    for (let i = 0; i < 6; i++) await insertJob(sys.db.sql, 'upscaler_jobs')
    await sys.waitFor('6 jobs completed', async () => (await completed(sys)) === 6)
    t.ok(fresh.submittedOn().has('account_2'), 'account_2 took work while both ran')

    await old.stop()
    t.same(await holders(sys), { primary: 1, account_2: 1 }, 'the old one left cleanly: both accounts still held, by the new one')
    for (let i = 0; i < 6; i++) await insertJob(sys.db.sql, 'pose_changer_jobs')
    await sys.waitFor('12 jobs completed', async () => (await completed(sys)) === 12)
    const [late] = await sys.db.sql`select count(*)::int as n from pose_changer_jobs where api_account = 'account_2'`
    t.ok(late!.n > 0, 'account_2 still takes work after the old dispatcher stopped')
    t.equal(old.releases() + fresh.releases(), 0, 'the old dispatcher never claimed on account_2, whose key it lacks')
    t.same(await tasksUsedTheirAccountsKey(sys), [], "every task was sent with its account's key")
  }
)

t.test(
  'rolling deploy in the other order, the new dispatcher stops first: account_2 is no longer claimable, its running task still completes',
  async (t) => {
    const sys = await startSystem(t, { slots: [1, 1], inProcess: false, sim: { taskDurationMs: 1500 } })
    await webhookOnly(t, sys)
    const old = await startDispatcher(t, envWith(sys, ownKeys(1)))
    const fresh = await startDispatcher(t, envWith(sys, ownKeys(1, 2)))
    await insertJob(sys.db.sql, 'upscaler_jobs')
    await insertJob(sys.db.sql, 'upscaler_jobs')
    const onSecond = await sys.waitFor(
      'a task running on account_2',
      async () => (await sys.db.sql`select id from upscaler_jobs where api_account = 'account_2' and status = 'running'`)[0]
    )

    await fresh.stop()
    const [state] = await sys.db
      .sql`select enabled, key_holders, unheld_reason, available from rhpool.account_status where name = 'account_2'`
    t.same(
      state,
      { enabled: true, key_holders: 0, unheld_reason: 'no live dispatcher holds its key', available: 0 },
      'nobody holds key 2 now: not claimable, not disabled, and status says why'
    )
    const later = [await insertJob(sys.db.sql, 'veste_ai_jobs'), await insertJob(sys.db.sql, 'veste_ai_jobs')]
    await sys.waitFor(
      'the account_2 task to complete through the webhook',
      async () => (await sys.db.sql`select 1 from upscaler_jobs where id = ${onSecond!.id} and status = 'completed'`).length > 0
    )
    await sys.waitFor('every job completed', async () => (await completed(sys)) === 4)
    const ranOn = await sys.db.sql`select distinct api_account from veste_ai_jobs where id in ${sys.db.sql(later)}`
    t.same(
      ranOn.map((r) => r.api_account),
      ['primary'],
      'the jobs queued after the new dispatcher stopped ran on primary only'
    )
    t.equal(old.releases(), 0, 'the old dispatcher never claimed on account_2')
    t.same(await tasksUsedTheirAccountsKey(sys), [], "every task was sent with its account's key")
  }
)

t.test('a dispatcher killed with SIGKILL stops counting as a holder once its heartbeat is stale', async (t) => {
  const sys = await startSystem(t, { slots: [2, 2], inProcess: false })
  const doomed = spawnRhpool(t, envWith(sys, ownKeys(1, 2)))
  await sys.waitFor('the dispatcher to hold both keys', async () => {
    const h = await holders(sys)
    return h.primary === 1 && h.account_2 === 1
  })
  await doomed.kill('SIGKILL')
  const [dead] = await sys.db.sql`select count(*)::int as n from rhpool.dispatchers`
  t.equal(dead!.n, 1, 'no clean stop: its presence is still there')
  await sys.waitFor(
    "the killed dispatcher's presence to go stale",
    async () => {
      const h = await holders(sys)
      return h.primary === 0 && h.account_2 === 0
    },
    15_000
  )
  const [row] = await sys.db.sql`select live, keys from rhpool.dispatcher_status`
  t.equal(row!.live, false, 'dispatcher_status shows it as not live')
  await insertJob(sys.db.sql, 'upscaler_jobs')
  t.same(await claim(sys.db.sql, 10, undefined, 'probe'), [], 'nothing is claimable on keys nobody live holds')
  const [primary] = await sys.db.sql`select enabled, unheld_reason from rhpool.account_status where name = 'primary'`
  t.same(primary, { enabled: true, unheld_reason: 'no live dispatcher holds its key' })
})

t.test(
  "presence in SQL, with the clock as a parameter: staleness, the claimer's own key, the lowest slots, a different key refused",
  async (t) => {
    const { sql } = await freshDatabase(t)
    const start = new Date(Date.UTC(2030, 0, 1))
    const at = (seconds: number): Date => new Date(start.getTime() + seconds * 1000)
    const fp = fingerprintOf('primary')
    await setAccounts(sql, [{ name: 'primary', slots: 3 }], 'first')
    // Re-declare with a 10 s bound from a fixed time, so the clock can be moved instead of waited for.
    await holdKeys(sql, 'first', [{ name: 'primary', slots: 3 }], 10, at(0))
    const holdersAt = async (seconds: number) => (await sql`select rhpool.live_key_holders('primary', ${fp}, ${at(seconds)}) as n`)[0]!.n
    t.equal(await holdersAt(5), 1, 'live within its bound')
    t.equal(await holdersAt(10.5), 0, 'stale after it')
    const [reason] = await sql`select rhpool.unheld_reason('primary', ${fp}, ${at(11)}) as r`
    t.equal(reason!.r, 'no live dispatcher holds its key')

    // Two live holders with different slots: the account runs with the lower.
    await holdKeys(sql, 'first', [{ name: 'primary', slots: 3 }])
    await holdKeys(sql, 'second', [{ name: 'primary', slots: 2 }])
    t.equal((await sql`select slots from rhpool.accounts where name = 'primary'`)[0]!.slots, 2, 'the lowest slots any live holder declares')
    await sql`select rhpool.dispatcher_leave('second')`
    t.equal((await sql`select slots from rhpool.accounts where name = 'primary'`)[0]!.slots, 3, 'back up when that holder leaves')

    // Another key for primary while 'first' holds the recorded one: refused with a clear error.
    const other = [{ name: 'primary', slots: 3, position: 1, fingerprint: 'fp_other_key' }]
    await t.rejects(
      sql`select * from rhpool.sync_accounts(${sql.json(other)})`,
      /account primary is held by a live dispatcher with key fp_primary, this configuration has key fp_other_key for it/
    )
    await sql`select rhpool.disable_account('primary', '802: APIKEY_UNAUTHORIZED', 'account_broken')`
    await sql`select rhpool.cool_down_account('primary', '421: TASK_QUEUE_MAXED')`
    await sql`update rhpool.accounts set learned_limit = 1, learned_at = now(), learned_reason = '421' where name = 'primary'`
    // 'first' goes stale (its last heartbeat an hour ago): the new key may be recorded, and the old key's broken state goes with it.
    await holdKeys(sql, 'first', [{ name: 'primary', slots: 3 }], 10, new Date(Date.now() - 3_600_000 + 60_000))
    await sql`select * from rhpool.dispatcher_heartbeat('third', ${sql.json([{ name: 'primary', fingerprint: 'fp_other_key', slots: 3 }])}, 60)`
    await sql`select * from rhpool.sync_accounts(${sql.json(other)})`
    const [after] =
      await sql`select key_fingerprint, enabled, disabled_code, key_holders, cooldown_until, learned_limit from rhpool.account_status where name = 'primary'`
    t.same(
      after,
      { key_fingerprint: 'fp_other_key', enabled: true, disabled_code: null, key_holders: 1, cooldown_until: null, learned_limit: null },
      "the new key is the account now, without the old key's state (broken, cooling down, a learned limit)"
    )

    // A dispatcher whose key was replaced while it was away may not claim there, even once it is back.
    await holdKeys(sql, 'first', [{ name: 'primary', slots: 3 }])
    const [state] =
      await sql`select state, recorded_holders from rhpool.dispatcher_heartbeat('first', ${sql.json([{ name: 'primary', fingerprint: fp, slots: 3 }])}, 60)`
    t.same(state, { state: 'other_key', recorded_holders: 1 }, 'its heartbeat tells it the recorded key is another')
    await insertJob(sql, 'upscaler_jobs')
    t.same(await claim(sql, 10, undefined, 'first'), [], 'no claim for the holder of the old key')
    t.same(
      (await claim(sql, 10, undefined, 'third')).map((c) => c.api_account),
      ['primary'],
      'the holder of the recorded key claims'
    )
    t.same(
      await sql`select * from rhpool.claim_account_slot(1, 'third', null, null, array['account_9'])`,
      [],
      "accounts: only those accounts' slots are filled"
    )

    // The only live holder changing its own key (a SIGHUP with a new key): its declaration comes first, so its old key never counts against it.
    await setAccounts(sql, [{ name: 'account_2', slots: 1 }], 'solo')
    const renamed = [{ name: 'account_2', slots: 1, position: 2, fingerprint: 'fp_rotated' }]
    await sql.begin(async (tx) => {
      await tx`select * from rhpool.dispatcher_heartbeat('solo', ${tx.json([{ name: 'account_2', fingerprint: 'fp_rotated', slots: 1 }])}, 60)`
      await tx`select * from rhpool.sync_accounts(${tx.json(renamed)})`
    })
    t.same((await sql`select key_fingerprint, key_holders from rhpool.account_status where name = 'account_2'`)[0], {
      key_fingerprint: 'fp_rotated',
      key_holders: 1,
    })
  }
)

t.test(
  'a dispatcher with a different key for a name in use is refused loudly for that account, runs with its others, and takes the name once the old key is gone',
  async (t) => {
    const sys = await startSystem(t, { slots: [1, 1, 1, 1], inProcess: false, sim: { taskDurationMs: 100 } })
    await webhookOnly(t, sys)
    const first = await startDispatcher(t, envWith(sys, ownKeys(1)))
    // "primary" here is testKeys[3]: another RunningHub account under the same name.
    const second = await startDispatcher(t, envWith(sys, { 1: testKeys[3]!, 2: testKeys[1]! }))
    const refusal = second.logs
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => /^refused: another live dispatcher holds a different key/.test(l.msg))
    t.match(
      refusal,
      { level: 50, account: 'primary', fingerprint: keyFingerprint(testKeys[3]!), recordedFingerprint: keyFingerprint(testKeys[0]!) },
      'an error names the account and both fingerprints'
    )
    t.notOk(second.logs.join('').includes(testKeys[3]!), 'never the key itself')
    t.equal(
      (await sys.db.sql`select key_fingerprint from rhpool.accounts where name = 'primary'`)[0]!.key_fingerprint,
      keyFingerprint(testKeys[0]!),
      'the recorded key stays the live one'
    )

    for (let i = 0; i < 4; i++) await insertJob(sys.db.sql, 'upscaler_jobs')
    await sys.waitFor('4 jobs completed', async () => (await completed(sys)) === 4)
    t.same([...second.submittedOn()].sort(), ['account_2'], 'the second dispatcher worked only on account_2')
    t.same(await tasksUsedTheirAccountsKey(sys), [], 'every primary task was sent with the recorded key')

    await first.stop()
    await sys.waitFor(
      'the second dispatcher to record its key for primary',
      async () =>
        (
          await sys.db
            .sql`select 1 from rhpool.account_status where name = 'primary' and key_fingerprint = ${keyFingerprint(testKeys[3]!)} and key_holders = 1`
        ).length > 0,
      15_000
    )
    for (let i = 0; i < 4; i++) await insertJob(sys.db.sql, 'pose_changer_jobs')
    await sys.waitFor('8 jobs completed', async () => (await completed(sys)) === 8)
    t.ok(second.submittedOn().has('primary'), `then it runs primary, with its own key (submitted on ${[...second.submittedOn()]})`)
    const sentWithNewKey = sys.sim.ledger.submissions.filter((s) => s.taskId && s.apiKey === simFingerprint(testKeys[3]!)).length
    t.ok(sentWithNewKey > 0, 'tasks went out with the new key')
    t.equal(second.releases(), 0, 'nothing claimed without a key')
  }
)
