// What a job becomes when a create call or a task fails, against the simulator
// over real HTTP: a full account spends no attempt and leaves no error on a
// job that then completes; a task that failed on RunningHub's own machine is
// retried as a new task (bounded by max_attempts); any other failure is final.
import t from 'tap'
import { insertJob } from './helpers/jobs.ts'
import { startSystem } from './helpers/system.ts'

const machineFailure = {
  node_id: '26',
  node_name: 'LoadImage',
  exception_type: 'OSError',
  exception_message: '[Errno 116] Stale file handle',
}

const finished = (sys: Awaited<ReturnType<typeof startSystem>>, id: string) =>
  sys.waitFor(
    'the job to finish',
    async () => {
      const [row] = await sys.db.sql`select status, attempts, error_code, error_message, task_id from upscaler_jobs where id = ${id}`
      return row && ['completed', 'failed'].includes(row.status as string) ? row : null
    },
    30_000
  )

t.test('account full (421) then success: no attempt spent, no error left behind', async (t) => {
  const sys = await startSystem(t, { slots: [1] })
  sys.sim.inject({ kind: 'errorCode', code: 421, message: 'TASK_QUEUE_MAXED' })
  const id = await insertJob(sys.db.sql, 'upscaler_jobs')
  t.match(await finished(sys, id), { status: 'completed', attempts: 1, error_code: null, error_message: null })
})

t.test('a machine failure is retried as a new task; a workflow failure is final', async (t) => {
  const sys = await startSystem(t, { slots: [1] })
  await sys.db.sql`insert into rhpool.settings (key, value) values ('machine_failure_retry_seconds', '0')
                   on conflict (key) do update set value = excluded.value`
  sys.sim.inject({ kind: 'taskFailure', failedReason: machineFailure })
  const retried = await insertJob(sys.db.sql, 'upscaler_jobs')
  const row = await finished(sys, retried)
  t.match(row, { status: 'completed', attempts: 2, error_code: null, error_message: null }, 'completed on the second attempt')
  const tasks = sys.sim.ledger.submissions.filter((s) => s.taskId !== null)
  t.equal(tasks.length, 2, 'two tasks: the failed one was over, so this is not paying twice')
  t.equal(row.task_id, tasks[1]!.taskId, 'the job holds the new task')
  const [log] = await sys.db.sql`select detail from rhpool.maintenance_log where action = 'machine_failure_retried' and job_id = ${retried}`
  t.match(log, { detail: new RegExp(`task ${tasks[0]!.taskId} failed on RunningHub's machine`) })

  sys.sim.inject({ kind: 'taskFailure', failedReason: machineFailure })
  const once = await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { max_attempts: 1 } })
  t.match(
    await finished(sys, once),
    { status: 'failed', attempts: 1, error_code: '805', error_message: /Stale file handle \(gave up after 1 attempts\)/ },
    'bounded by max_attempts'
  )

  sys.sim.inject({
    kind: 'taskFailure',
    failedReason: { node_name: 'KSampler', exception_type: 'OutOfMemoryError', exception_message: 'CUDA out of memory' },
  })
  const final = await insertJob(sys.db.sql, 'upscaler_jobs')
  t.match(await finished(sys, final), {
    status: 'failed',
    attempts: 1,
    error_code: '805',
    error_message: 'KSampler: OutOfMemoryError: CUDA out of memory',
  })
})
