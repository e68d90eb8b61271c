// The simulator's normal behaviour: round trips, limits, accounts, files, classic API.
import t from 'tap'
import { startSimulator, type Simulator } from '../simulator/index.ts'
import { startReceiver, type Receiver } from './helpers/sim-receiver.ts'
import { call, nodeInfo, runV2, sleep, until } from './helpers/sim-client.ts'

const KEY = 'key-alpha-0001'
const KEY2 = 'key-beta-0002'

let sim: Simulator
let receiver: Receiver

t.beforeEach(async () => {
  sim = await startSimulator({ seed: 7, accounts: [{ apiKey: KEY }, { apiKey: KEY2, concurrency: 2 }] })
  receiver = await startReceiver()
})
t.afterEach(async () => {
  await sim.close()
  await receiver.close()
})

t.test('v2 run → callback round trip (v2 shape) and query', async (t) => {
  const res = await runV2(sim.url, KEY, { webhookUrl: `${receiver.url}/hooks/job-1?sig=abc`, instanceType: 'plus' })
  t.equal(res.status, 200)
  t.match(res.json, {
    status: 'QUEUED',
    errorCode: '',
    errorMessage: '',
    results: null,
    promptTips: '{"result": true, "error": null, "outputs_to_execute": ["4"], "node_errors": {}}',
  })
  t.same(Object.keys(res.json), ['taskId', 'status', 'errorCode', 'errorMessage', 'results', 'clientId', 'promptTips'], "sample 3's keys")
  const taskId: string = res.json.taskId
  t.match(taskId, /^\d{19}$/, '19-digit id')
  t.ok(BigInt(taskId) > BigInt(Number.MAX_SAFE_INTEGER), 'beyond the safe integer range')

  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.path, '/hooks/job-1?sig=abc')
  t.match(callback!.body, {
    event: 'TASK_END',
    taskId,
    eventData: {
      taskId,
      status: 'SUCCESS',
      errorCode: '',
      results: [{ url: `https://rh-images.example/output/${taskId}.png`, outputType: 'png', text: null }],
      failedReason: {},
      usage: { consumeMoney: null, consumeCoins: null, taskCostTime: '1', thirdPartyConsumeMoney: '0.05' },
      parentTaskId: null,
      taskUsageList: [{ taskId: Number(taskId), taskStatus: 'SUCCESS' }],
    },
  })
  t.same(Object.keys(callback!.body), ['eventData', 'event', 'taskId'], "sample 10's keys")
  t.same(Object.keys(callback!.body.eventData as object), [
    'taskId',
    'status',
    'errorCode',
    'errorMessage',
    'results',
    'clientId',
    'promptTips',
    'failedReason',
    'usage',
    'parentTaskId',
    'taskUsageList',
  ])

  const q = await call(sim.url, 'POST', '/openapi/v2/query', { key: KEY, body: { taskId } })
  t.match(q.json, {
    taskId,
    status: 'SUCCESS',
    failedReason: {},
    results: [{ nodeId: '9' }],
    usage: { consumeCoins: null, thirdPartyConsumeMoney: '0.05' },
    clientId: '',
    promptTips: '',
  })
  t.same(
    Object.keys(q.json),
    ['taskId', 'status', 'errorCode', 'errorMessage', 'failedReason', 'usage', 'results', 'clientId', 'promptTips'],
    "sample 4's keys"
  )
  t.equal(sim.ledger.charged(KEY), '0.05', 'the ledger has the charge')
  t.equal(sim.balance(KEY), '99.95', 'cost debited')

  const sub = sim.ledger.submissions[0]!
  t.match(sub, { outcome: 'accepted', taskId, webappId: '1900000000000000001', instanceType: 'plus', jobRef: '/hooks/job-1' })
  t.notMatch(JSON.stringify(sim.ledger.submissions), KEY, 'ledger never holds the raw key')
  t.match(sim.ledger.task(taskId), { status: 'SUCCESS', startedAt: Number, endedAt: Number })
  t.match(sim.ledger.callbacksFor(taskId), [{ attempt: 1, status: 200, error: null }])
})

t.test('classic callback shape: eventData is a JSON string', async (t) => {
  sim.configure({ callbackShape: 'classic' })
  const res = await runV2(sim.url, KEY, { webhookUrl: `${receiver.url}/hooks/c` })
  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.body.event, 'TASK_END')
  t.equal(callback!.body.taskId, res.json.taskId)
  t.type(callback!.body.eventData, 'string')
  const inner = JSON.parse(callback!.body.eventData as string)
  t.match(inner, { code: 0, msg: 'success', data: [{ fileUrl: String, fileType: 'png', taskCostTime: '1', nodeId: '9' }] })
})

t.test('failed task: 805 with failedReason, v2 query and classic outputs', async (t) => {
  sim.configure({ outcome: 'failed' })
  const res = await runV2(sim.url, KEY, { webhookUrl: `${receiver.url}/hooks/f` })
  const [callback] = await receiver.waitFor(1)
  t.match(callback!.body, { eventData: { status: 'FAILED', errorCode: '805', failedReason: { exception_type: 'RuntimeError' } } })
  const out = await call(sim.url, 'POST', '/task/openapi/outputs', { body: { apiKey: KEY, taskId: res.json.taskId } })
  t.match(out.json, { code: 805, data: { failedReason: { node_id: '9' } } })
})

t.test('concurrency limit: 421 creates nothing; max concurrency is exact', async (t) => {
  sim.configure({ taskDurationMs: 1000 })
  const answers = await Promise.all(Array.from({ length: 6 }, () => runV2(sim.url, KEY2)))
  const accepted = answers.filter((a) => a.json.taskId !== '')
  const refused = answers.filter((a) => a.json.errorCode === '421')
  t.equal(accepted.length, 2)
  t.equal(refused.length, 4)
  t.match(refused[0]!.json, { taskId: '', status: '', errorCode: '421', errorMessage: 'TASK_QUEUE_MAXED' })
  t.equal(refused[0]!.status, 200, 'v2 refuses with HTTP 200')
  t.equal(sim.ledger.tasks.length, 2, 'no task for refused creates')
  const stats = sim.ledger.concurrency(KEY2)
  t.equal(stats.maxConcurrency, 2)
  t.equal(stats.running, 2)
  t.same(
    stats.timeline.map((c) => c.running),
    [1, 2]
  )

  const qs = await call(sim.url, 'GET', '/openapi/v2/queue/status', { key: KEY2 })
  // Exactly the shape captured from the real service (samples, 9): wrapped, counts as strings.
  t.same(qs.json, {
    code: 0,
    msg: 'success',
    data: { apiKeyType: 'NORMAL', concurrentLimit: 2, runningCount: '2', queuedCount: '0', totalCurrentTasks: '2' },
  })
  t.same(sim.queueStatus(KEY2), qs.json)

  await until(() => sim.ledger.concurrency(KEY2).running === 0, 5000, 'tasks to end')
  t.pass('slots freed at the end')
  t.equal((await runV2(sim.url, KEY2)).json.errorCode, '', 'room again')
})

t.test('unknown, missing and removed keys answer 802', async (t) => {
  const unknown = await runV2(sim.url, 'nope')
  t.equal(unknown.status, 200)
  t.match(unknown.json, { taskId: '', errorCode: '802', errorMessage: 'APIKEY_UNAUTHORIZED' })
  const missing = await call(sim.url, 'POST', '/openapi/v2/run/ai-app/1', { body: { nodeInfoList: nodeInfo } })
  t.equal(missing.json.errorCode, '802')

  sim.configure({ unauthorizedHttpStatus: 401 })
  t.equal((await runV2(sim.url, 'nope')).status, 401, 'configurable HTTP status')

  sim.removeAccount(KEY2)
  t.equal((await runV2(sim.url, KEY2)).json.errorCode, '802')
  const classic = await call(sim.url, 'POST', '/task/openapi/status', { body: { apiKey: KEY2, taskId: '1' } })
  t.same(classic.json, { code: 802, msg: 'APIKEY_UNAUTHORIZED', data: null })
  t.equal(classic.status, 200)
  const qs = await call(sim.url, 'GET', '/openapi/v2/queue/status', { key: 'nope' })
  t.same(qs.json, { code: 802, msg: 'APIKEY_UNAUTHORIZED', data: null }, 'queue/status is wrapped, errors too')
})

t.test('nodeInfoList validation', async (t) => {
  const empty = await call(sim.url, 'POST', '/openapi/v2/run/ai-app/1', { key: KEY, body: { nodeInfoList: [] } })
  t.equal(empty.json.errorCode, '301')
  const missing = await call(sim.url, 'POST', '/openapi/v2/run/workflow/2', { key: KEY, body: {} })
  t.equal(missing.json.errorCode, '301')
  const bad = await call(sim.url, 'POST', '/openapi/v2/run/ai-app/1', {
    key: KEY,
    body: { nodeInfoList: [{ nodeId: 3, fieldName: 'x', fieldValue: 'y' }] },
  })
  t.equal(bad.json.errorCode, '803')
  t.match(bad.json.errorMessage, /nodeInfoList\[0\]\.nodeId/)
  t.equal(sim.ledger.tasks.length, 0)
  t.same(
    sim.ledger.submissions.map((s) => s.outcome),
    ['301', '301', '803']
  )
})

t.test('uploads: v2 names openapi/…, classic api/…; visible only to the uploading key with uploadsPerKey', async (t) => {
  sim.configure({ uploadsPerKey: true })
  const form = new FormData()
  form.append('file', new Blob([Buffer.from('png-bytes')], { type: 'image/png' }), 'input.png')
  const up = await fetch(`${sim.url}/openapi/v2/media/upload/binary`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}` },
    body: form,
  })
  const upJson = (await up.json()) as any
  t.match(upJson, { code: 0, message: 'success', data: { type: 'image', fileName: /^openapi\/[0-9a-f]{64}\.png$/, size: '9' } })
  const fileName: string = upJson.data.fileName
  const list = [{ nodeId: '5', fieldName: 'image', fieldValue: fileName }]

  const other = await runV2(sim.url, KEY2, { nodeInfoList: list })
  t.equal(other.json.errorCode, '803')
  t.match(other.json.errorMessage, fileName, 'message names the file')
  const mine = await runV2(sim.url, KEY, { nodeInfoList: list })
  t.equal(mine.json.errorCode, '')
  const url = await runV2(sim.url, KEY2, { nodeInfoList: [{ nodeId: '5', fieldName: 'image', fieldValue: 'https://x.example/a.png' }] })
  t.equal(url.json.errorCode, '', 'plain URLs pass')

  // classic upload: apiKey as a multipart field
  const form2 = new FormData()
  form2.append('apiKey', KEY2)
  form2.append('fileType', 'image')
  form2.append('file', new Blob([Buffer.from('other')], { type: 'image/jpeg' }), 'x.jpg')
  const classic = (await (await fetch(`${sim.url}/task/openapi/upload`, { method: 'POST', body: form2 })).json()) as any
  t.match(classic, { code: 0, data: { fileName: /^api\/[0-9a-f]{64}\.jpg$/, fileType: 'image' } })
})

t.test('balance exhaustion answers 416', async (t) => {
  sim.setBalance(KEY, '0.10')
  await runV2(sim.url, KEY)
  await runV2(sim.url, KEY)
  await until(() => sim.balance(KEY) === '0.00', 3000, 'both tasks to be charged')
  const res = await runV2(sim.url, KEY)
  t.match(res.json, { taskId: '', errorCode: '416', errorMessage: 'TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET' })
  const status = await call(sim.url, 'POST', '/uc/openapi/accountStatus', { body: { apikey: KEY } })
  t.match(status.json, { code: 0, data: { remainMoney: '0.00', remainCoins: '990', currentTaskCounts: '0', currency: 'USD' } })
  const classic = await call(sim.url, 'POST', '/task/openapi/ai-app/run', { body: { apiKey: KEY, webappId: '1', nodeInfoList: nodeInfo } })
  t.same(classic.json, { code: 416, msg: 'TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET', data: null })
})

t.test('classic endpoints: run, status, outputs (813/804/0), accountStatus key spelling', async (t) => {
  sim.configure({ queueDelayMs: 500, taskDurationMs: 1000 })
  const run = await call(sim.url, 'POST', '/task/openapi/ai-app/run', {
    body: { apiKey: KEY, webappId: '42', nodeInfoList: nodeInfo, webhookUrl: `${receiver.url}/hooks/classic` },
  })
  t.match(run.json, {
    code: 0,
    msg: 'success',
    data: {
      taskId: /^\d{19}$/,
      clientId: String,
      taskStatus: 'QUEUED',
      netWssUrl: null,
      promptTips: '{"result": true, "error": null, "outputs_to_execute": ["4"], "node_errors": {}}',
    },
  })
  const taskId = run.json.data.taskId
  const ask = (path: string) => call(sim.url, 'POST', path, { body: { apiKey: KEY, taskId } })

  t.same((await ask('/task/openapi/status')).json, { code: 0, msg: 'success', data: 'QUEUED' })
  t.match((await ask('/task/openapi/outputs')).json, { code: 813 })
  await until(async () => (await ask('/task/openapi/status')).json.data === 'RUNNING', 3000, 'RUNNING')
  t.match((await ask('/task/openapi/outputs')).json, { code: 804 })
  await receiver.waitFor(1)
  t.same((await ask('/task/openapi/status')).json.data, 'SUCCESS')
  t.match((await ask('/task/openapi/outputs')).json, {
    code: 0,
    data: [{ fileUrl: String, fileType: 'png', nodeId: '9', consumeCoins: null, consumeMoney: null, thirdPartyConsumeMoney: '0.06' }],
  })

  const create = await call(sim.url, 'POST', '/task/openapi/create', { body: { apiKey: KEY, workflowId: '77' } })
  t.equal(create.json.code, 0, 'classic workflow create runs without nodeInfoList')

  const wrongSpelling = await call(sim.url, 'POST', '/uc/openapi/accountStatus', { body: { apiKey: KEY } })
  t.equal(wrongSpelling.json.code, 802, 'accountStatus wants lower-case apikey')
  const other = await call(sim.url, 'POST', '/task/openapi/status', { body: { apiKey: KEY2, taskId } })
  t.match(other.json, { code: 807 }, "another key's task is not found")
})

t.test('cancel, by default: the task reads FAILED (805), its slot is free, no callback', async (t) => {
  sim.configure({ taskDurationMs: 5000 })
  const res = await runV2(sim.url, KEY2, { webhookUrl: `${receiver.url}/hooks/cancel-me` })
  const taskId = res.json.taskId
  await until(() => sim.queueStatus(KEY2).data.runningCount === '1', 3000, 'RUNNING')
  t.same((await call(sim.url, 'POST', '/task/openapi/cancel', { body: { apiKey: KEY2, taskId } })).json, {
    code: 0,
    msg: 'success',
    data: null,
  })
  t.equal(sim.queueStatus(KEY2).data.totalCurrentTasks, '0', 'slot freed')
  t.match((await call(sim.url, 'POST', '/openapi/v2/query', { key: KEY2, body: { taskId } })).json, { status: 'FAILED', errorCode: '805' })
  t.same(sim.ledger.callbacksFor(taskId), [], 'no callback was started')
})

t.test('cancel with cancelStatus CANCEL and callbackOnCancel: ends CANCEL, calls back with CANCEL', async (t) => {
  sim.configure({ taskDurationMs: 5000, cancelStatus: 'CANCEL', callbackOnCancel: true })
  const res = await runV2(sim.url, KEY2, { webhookUrl: `${receiver.url}/hooks/cancel-me` })
  const taskId = res.json.taskId
  await until(() => sim.queueStatus(KEY2).data.runningCount === '1', 3000, 'RUNNING')
  const cancel = await call(sim.url, 'POST', '/task/openapi/cancel', { body: { apiKey: KEY2, taskId } })
  t.same(cancel.json, { code: 0, msg: 'success', data: null })
  t.equal(sim.queueStatus(KEY2).data.totalCurrentTasks, '0', 'slot freed')
  const [callback] = await receiver.waitFor(1)
  t.match(callback!.body, { event: 'TASK_END', taskId, eventData: { status: 'CANCEL' } })
  t.match((await call(sim.url, 'POST', '/openapi/v2/query', { key: KEY2, body: { taskId } })).json, { status: 'CANCEL' })
  const unknown = await call(sim.url, 'POST', '/task/openapi/cancel', { body: { apiKey: KEY2, taskId: '1999999999999999999' } })
  t.same(unknown.json, { code: 807, msg: 'APIKEY_TASK_NOT_FOUND', data: null })
  await sleep(50)
  t.equal(receiver.received.length, 1, 'no success callback follows')
})

t.test('forget: query, status and outputs answer 807', async (t) => {
  const res = await runV2(sim.url, KEY)
  const taskId = res.json.taskId
  t.ok(sim.forget(taskId))
  const q = await call(sim.url, 'POST', '/openapi/v2/query', { key: KEY, body: { taskId } })
  t.match(q.json, { taskId, status: '', errorCode: '807', errorMessage: 'APIKEY_TASK_NOT_FOUND' })
  t.match((await call(sim.url, 'POST', '/task/openapi/status', { body: { apiKey: KEY, taskId } })).json, { code: 807 })
  t.match((await call(sim.url, 'POST', '/task/openapi/outputs', { body: { apiKey: KEY, taskId } })).json, { code: 807 })

  sim.inject({ kind: 'forgetTask' })
  const res2 = await runV2(sim.url, KEY, { webhookUrl: `${receiver.url}/hooks/forgotten` })
  await receiver.waitFor(1)
  t.match((await call(sim.url, 'POST', '/openapi/v2/query', { key: KEY, body: { taskId: res2.json.taskId } })).json, { errorCode: '807' })
})

t.test('bad JSON answers 400, oversized bodies 413 (proxy page), unknown paths 404', async (t) => {
  const bad = await call(sim.url, 'POST', '/openapi/v2/run/ai-app/1', { key: KEY, rawBody: '{"nodeInfoList": [' })
  t.equal(bad.status, 400)
  t.match(bad.json, { status: 400, error: 'Bad Request' })
  const huge = await call(sim.url, 'POST', '/openapi/v2/run/ai-app/1', { key: KEY, rawBody: JSON.stringify({ x: 'a'.repeat(1_100_000) }) })
  t.equal(huge.status, 413)
  t.match(huge.text, /<html>[\s\S]*nginx/)
  const missing = await call(sim.url, 'GET', '/nope')
  t.equal(missing.status, 404)
})

t.test('ledger groups submissions by job reference', async (t) => {
  await runV2(sim.url, KEY, { webhookUrl: `${receiver.url}/hooks/job-a?sig=1` })
  await runV2(sim.url, KEY, { webhookUrl: `${receiver.url}/hooks/job-b?sig=1` })
  await runV2(sim.url, KEY2, { webhookUrl: `${receiver.url}/hooks/job-a?sig=2` })
  const groups = sim.ledger.submissionsByJobRef()
  t.equal(groups.get('/hooks/job-a')?.length, 2)
  t.same([...sim.ledger.duplicateJobRefs().keys()], ['/hooks/job-a'])
  t.equal(sim.ledger.maxConcurrencyAnyKey, 2)
})
