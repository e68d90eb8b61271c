// The captured RunningHub samples, byte for byte, through the real paths: the
// webhook route over HTTP against a started system, and reconciliation asking
// a RunningHub that answers the captured query. Each checks the job's state,
// outputs and cost (with the field and unit it came from).
import t from 'tap'
import { createServer } from 'node:http'
import { insertJob, setTaskId, type JobTable } from './helpers/jobs.ts'
import { startSystem, testKeys, testSecret } from './helpers/system.ts'
import { webhookPath } from '../src/webhook/job-reference.ts'
import { RunningHubClient } from '../src/runninghub/client.ts'
import { reconcileOverdueJobs } from '../src/maintenance/reconcile.ts'
import { createLogger } from '../src/log.ts'
import * as captured from './fixtures/runninghub-captured.ts'

type Sys = Awaited<ReturnType<typeof startSystem>>

/** A running job whose task id is the sample's, so the sample can be sent as it is. */
async function runningJobFor(sys: Sys, table: JobTable, sampleTaskId: string) {
  const id = await insertJob(sys.db.sql, table)
  const [job] = await sys.waitFor('the job to run', async () => {
    const rows = await sys.db.sql`select attempts from rhpool.jobs where id = ${id} and status = 'running'`
    return rows.length ? rows : null
  })
  await setTaskId(sys.db.sql, table, id, sampleTaskId)
  return { id, path: webhookPath(testSecret, { jobTable: table, jobId: id, attempt: job!.attempts as number }) }
}

const post = async (sys: Sys, path: string, body: string) => {
  const response = await fetch(sys.baseUrl + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  return { status: response.status, json: (await response.json()) as Record<string, unknown> }
}

const jobRow = async (sys: Sys, table: JobTable, id: string) =>
  (
    await sys.db.sql`select status, output_url, outputs, rh_cost::text as cost, rh_cost_field as field, rh_cost_unit as unit, error_code
                    from ${sys.db.sql(table)} where id = ${id}`
  )[0]

// These two read captured callbacks' content for tasks the simulator never ran (their ids are
// the samples'), so nothing could confirm them: they trust callbacks as sent (the opt-out).
const trusted = { RHPOOL_CONFIRM_CALLBACKS: 'false' }

t.test('every captured callback through the webhook route', async (t) => {
  const sys = await startSystem(t, { slots: [6], sim: { taskDurationMs: 60_000 }, env: trusted })

  const ten = await runningJobFor(sys, 'upscaler_jobs', '2052287938007814145')
  t.match(await post(sys, ten.path, captured.sample10V2TaskEndCallback), { status: 200, json: { outcome: 'applied' } })
  t.match(
    await jobRow(sys, 'upscaler_jobs', ten.id),
    {
      status: 'completed',
      output_url:
        'https://rh-images-1252422369.cos.ap-beijing.myqcloud.com/c91531cbf3337fbe998612da4112ea99/output/c0cfe90a-3d90-465e-8852-5fbb6089cc54.jpg',
      cost: '0.14',
      field: 'usage.thirdPartyConsumeMoney',
      unit: 'money',
      error_code: null,
    },
    'sample 10: completed, cost from thirdPartyConsumeMoney'
  )
  const [event] = await sys.db
    .sql`select rh_cost::text as cost, rh_cost_unit as unit, rh_cost_field as field from rhpool.job_events where job_id = ${ten.id}`
  t.same(event, { cost: '0.14', unit: 'money', field: 'usage.thirdPartyConsumeMoney' }, 'the terminal event carries the cost and its unit')

  const two = await runningJobFor(sys, 'video_upscaler_jobs', '2018819290219810818')
  t.match(await post(sys, two.path, captured.sample2V2TaskEndCallback), { status: 200, json: { outcome: 'applied' } })
  t.match(
    await jobRow(sys, 'video_upscaler_jobs', two.id),
    { status: 'completed', output_url: 'https://...mp4', cost: null, field: null, unit: null },
    'sample 2: the video, no cost (none was sent)'
  )

  const one = await runningJobFor(sys, 'pose_changer_jobs', '1904163390028185602')
  t.match(await post(sys, one.path, captured.sample1ClassicTaskEndCallback), { status: 200, json: { outcome: 'applied' } })
  t.match(
    await jobRow(sys, 'pose_changer_jobs', one.id),
    {
      status: 'completed',
      output_url: 'https://rh-images.xiaoyaoyou.com/de0db6f2564c8697b07df55a77f07be9/output/ComfyUI_00033_hpgko_1742822929.png',
      cost: null,
    },
    'sample 1 (classic): completed; a duration is not a cost'
  )

  // getWebhookDetail (sample 7) holds the eventData RunningHub sent for its task.
  const detail = JSON.parse(captured.sample7GetWebhookDetail).data
  const seven = await runningJobFor(sys, 'veste_ai_jobs', detail.taskId)
  t.match(await post(sys, seven.path, JSON.stringify({ event: 'TASK_END', taskId: detail.taskId, eventData: detail.eventData })), {
    status: 200,
    json: { outcome: 'applied' },
  })
  t.match(await jobRow(sys, 'veste_ai_jobs', seven.id), { status: 'completed', output_url: /ComfyUI_00059_hnona_1742889987\.png$/ })
})

t.test('a video task listing a preview image: output_url is the video, outputs keep both', async (t) => {
  const sys = await startSystem(t, { slots: [2], sim: { taskDurationMs: 60_000 }, env: trusted })
  const job = await runningJobFor(sys, 'video_upscaler_jobs', '2018819290219810899')
  const results = [
    { url: 'https://cdn.example/preview.png', nodeId: '3', outputType: 'png', text: null },
    { url: 'https://cdn.example/video.mp4', nodeId: '9', outputType: 'mp4', text: null },
  ]
  await post(
    sys,
    job.path,
    JSON.stringify({
      event: 'TASK_END',
      taskId: '2018819290219810899',
      eventData: { taskId: '2018819290219810899', status: 'SUCCESS', results },
    })
  )
  t.match(await jobRow(sys, 'video_upscaler_jobs', job.id), {
    status: 'completed',
    output_url: 'https://cdn.example/video.mp4',
    outputs: results,
  })
})

t.test("SUCCESS without results and TASK_END without status: held, RunningHub's query decides", async (t) => {
  const sys = await startSystem(t, { slots: [2], sim: { taskDurationMs: 200 } })
  sys.sim.inject({ kind: 'callbackLost', times: 2 })
  for (const eventData of [
    (id: string) => ({ taskId: id, status: 'SUCCESS', results: [] }),
    (id: string) => ({ taskId: id, results: null }),
  ]) {
    const id = await insertJob(sys.db.sql, 'upscaler_jobs')
    const [job] = await sys.waitFor('the job to run', async () => {
      const rows = await sys.db.sql`select task_id, attempts from rhpool.jobs where id = ${id} and status = 'running'`
      return rows.length ? rows : null
    })
    const taskId = job!.task_id as string
    await sys.waitFor('RunningHub to finish the task', async () => sys.sim.task(taskId)?.status === 'SUCCESS')
    const path = webhookPath(testSecret, { jobTable: 'upscaler_jobs', jobId: id, attempt: job!.attempts as number })
    t.match(await post(sys, path, JSON.stringify({ event: 'TASK_END', taskId, eventData: eventData(taskId) })), {
      status: 200,
      json: { outcome: 'unconfirmed' },
    })
    await sys.waitFor('the query to complete the job', async () => (await jobRow(sys, 'upscaler_jobs', id))!.status === 'completed')
    t.match(
      await jobRow(sys, 'upscaler_jobs', id),
      { output_url: `https://rh-images.example/output/${taskId}.png`, field: 'usage.thirdPartyConsumeMoney', unit: 'money', cost: '0.05' },
      "completed with RunningHub's own answer, never without an output"
    )
    const [delivery] = await sys.db.sql`select resolution from rhpool.webhook_deliveries where job_id = ${id} and outcome = 'unconfirmed'`
    t.match(delivery, { resolution: /^confirmed/ })
  }
})

t.test("reconciliation reads the captured query answer (sample 4) with the account's key", async (t) => {
  const sys = await startSystem(t, { slots: [1], sim: { taskDurationMs: 60_000 } })
  const job = await runningJobFor(sys, 'upscaler_jobs', '2013508786110730241')
  await sys.db.sql`update rhpool.tools set callback_deadline = '0 seconds'::interval`
  const keys: string[] = []
  const server = createServer((request, response) => {
    keys.push(String(request.headers.authorization))
    request.resume()
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end(captured.sample4V2QuerySuccess))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const address = server.address()
  const client = new RunningHubClient(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, 2000)
  t.teardown(() => client.close())
  const accounts = new Map(sys.config.accounts.map((a) => [a.name, a]))
  await sys.waitFor('the reconciliation to apply sample 4', async () => {
    await reconcileOverdueJobs({ sql: sys.db.sql, config: sys.config, log: createLogger('silent'), client, accounts: () => accounts })
    return (await jobRow(sys, 'upscaler_jobs', job.id))!.status !== 'running'
  })
  t.match(
    await jobRow(sys, 'upscaler_jobs', job.id),
    {
      status: 'completed',
      output_url:
        'https://rh-images-1252422369.cos.ap-beijing.myqcloud.com/b04e28cad0ee39193921a30a2eb4dc00/output/ComfyUI_00001_plhjr_1768892915.png',
      cost: null,
      field: null,
      unit: null,
    },
    'completed; sample 4 reports no cost, and none is estimated'
  )
  t.ok(keys.includes(`Bearer ${testKeys[0]}`), "asked with the account's key")
})

t.test("per-account cost sums equal the simulator's ledger", async (t) => {
  const sys = await startSystem(t, { slots: [2, 2], sim: { taskDurationMs: 100 } })
  const ids = []
  for (let i = 0; i < 6; i++) ids.push(await insertJob(sys.db.sql, i % 2 ? 'veste_ai_jobs' : 'upscaler_jobs'))
  await sys.waitFor(
    'all completed',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n === ids.length,
    30_000
  )
  const costs = await sys.db.sql`select account, unit, jobs, cost::text from rhpool.account_costs()`
  const byName: Record<string, string> = { primary: testKeys[0]!, account_2: testKeys[1]! }
  t.ok(costs.length >= 1)
  for (const row of costs) {
    t.equal(row.unit, 'money')
    t.equal(
      Number(row.cost),
      Number(sys.sim.ledger.charged(byName[row.account as string]!)),
      `${row.account}: rhpool's sum is RunningHub's charge`
    )
  }
  t.equal(
    costs.reduce((n, r) => n + Number(r.jobs), 0),
    ids.length
  )
})
