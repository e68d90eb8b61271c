// Chaos, the short version for CI (bench/soak.ts runs the same scenario for longer).
//
// A private PostgreSQL cluster (restarted once mid-run), the RunningHub simulator with
// probabilistic faults of every class on 3 accounts, 3 dispatcher processes and 2 webhook
// servers behind a round-robin forwarder, 900 jobs inserted over 75 s while processes
// are SIGKILLed at random and restarted. Then the system drains and every guarantee is
// checked from the database and the simulator's ledger.
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { defaultChaosOptions, figureLine, figureReport, removeWorkDir, runChaos, verifyChaos } from './helpers/chaos.ts'
import { insertJob } from './helpers/jobs.ts'
import { startSystem } from './helpers/system.ts'

// The chaos run below found this; kept as a small deterministic case of its own.
t.test('a task that failed at RunningHub and whose callback was lost is settled by reconciliation', async (t) => {
  const sys = await startSystem(t, { slots: [1], sim: { taskDurationMs: 100 } })
  const { sql } = sys.db
  await sql`update rhpool.tools set callback_deadline = interval '1 second', hard_deadline = interval '4 seconds'`
  await sql`update rhpool.settings set value = '1' where key = 'reconcile_interval_seconds'`
  sys.sim.inject({ kind: 'taskFailure' })
  sys.sim.inject({ kind: 'callbackLost' })
  const id = await insertJob(sql, 'upscaler_jobs')
  await sys.waitFor('RunningHub to fail the task', async () => sys.sim.ledger.tasks[0]?.status === 'FAILED')
  let settled: Record<string, unknown> | undefined
  try {
    settled = await sys.waitFor(
      'the job to be settled by reconciliation',
      async () => {
        // Terminal, not merely "not running": on a busy machine the task can fail before the
        // create answer is recorded, and the job is still 'submitting' then.
        const [row] =
          await sql`select status, error_code from upscaler_jobs where id = ${id} and status in ('completed', 'failed', 'cancelled')`
        return row
      },
      30_000
    )
  } catch {
    // reported below
  }
  const [job] = await sql`select status, error_code from upscaler_jobs where id = ${id}`
  t.same(
    job,
    { status: 'failed', error_code: '805' },
    "failed with RunningHub's code, well past the callback deadline (1 s) and the hard deadline (4 s)"
  )
  t.notOk(settled === undefined, 'not left running for ever')
  const [slots] = await sql`select count(*)::int as n from rhpool.runs where account is not null`
  t.equal(slots!.n, 0, 'its slot is free')
})

t.test('chaos: kills, a Postgres restart and faults of every class; every guarantee holds', async (t) => {
  const workDir = join(tmpdir(), `rhpool-chaos-${process.pid}-${Date.now()}`)
  const options = {
    ...defaultChaosOptions(workDir),
    seed: Number(process.env.RHPOOL_CHAOS_SEED ?? 20240601),
    jobs: 900,
    chaosMs: 75_000,
    drainTimeoutMs: 45_000,
    progress: process.env.RHPOOL_CHAOS_VERBOSE ? (line: string) => t.comment(line) : undefined,
  }
  const run = await runChaos(t, options)
  const { checks, figures } = await verifyChaos(run)
  const failed = checks.some((c) => !c.ok)
  await run.close({ keepDatabase: failed })
  for (const check of checks) t.ok(check.ok, check.name, check.ok ? {} : { detail: check.detail })
  t.same(
    run.stopCodes.filter((s) => s.code !== 0),
    [],
    'every process stops cleanly on SIGTERM at the end'
  )
  t.comment(figureLine(figures))
  if (failed) {
    t.comment(`seed ${options.seed}; logs of every process and the database kept in ${workDir}`)
    for (const line of figureReport(figures).split('\n')) t.comment(line)
  } else {
    removeWorkDir(workDir)
  }
})
