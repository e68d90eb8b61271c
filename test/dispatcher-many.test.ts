// Several dispatcher processes at once against one database: no account over
// its limit as RunningHub itself counts it (the simulator would accept more),
// and no job submitted twice.
import t from 'tap'
import { insertJob, jobTables } from './helpers/jobs.ts'
import { spawnRhpool, startSystem, tasksPerJob, testKeys } from './helpers/system.ts'
import { loadConfig } from '../src/config/index.ts'
import { createLogger } from '../src/log.ts'
import { startService } from '../src/service.ts'

for (const dispatchers of [2, 4]) {
  t.test(`${dispatchers} dispatchers at once`, async (t) => {
    const slots = [3, 2]
    const sys = await startSystem(t, { slots, simConcurrency: 20, inProcess: false, sim: { taskDurationMs: 120 } })
    const webhook = await startService(loadConfig({ ...sys.env, RHPOOL_DISPATCHER: 'false' }), createLogger('silent'))
    t.teardown(() => webhook.stop())
    const processes = Array.from({ length: dispatchers }, () => spawnRhpool(t, { ...sys.env, RHPOOL_HTTP: 'false', LOG_LEVEL: 'warn' }))
    const total = 80
    for (let i = 0; i < total; i++) await insertJob(sys.db.sql, jobTables[i % 4]!)
    await sys.waitFor(
      `${total} jobs completed`,
      async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n === total,
      60_000
    )

    slots.forEach((limit, i) => {
      const measured = sys.sim.ledger.concurrency(testKeys[i]!).maxConcurrency
      t.ok(measured <= limit, `account ${i + 1}: at most ${measured} tasks at once at RunningHub, limit ${limit}`)
      t.equal(measured, limit, `account ${i + 1}: and its slots were all used`)
    })
    const perJob = tasksPerJob(sys.sim)
    t.equal(perJob.size, total, 'every job reached RunningHub')
    t.same(
      [...perJob.values()].filter((n) => n !== 1),
      [],
      'none twice'
    )
    const holders = await sys.db.sql`select count(distinct holder)::int as n from rhpool.runs where account is not null`
    t.equal(holders[0]!.n, 0, 'no slot left held')
    for (const p of processes) t.equal(await p.kill('SIGTERM'), 0, 'each dispatcher stops cleanly')
  })
}
