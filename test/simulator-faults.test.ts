// Fault injection: every kind, in the shape a client would really meet it.
import t from 'tap'
import { startSimulator, type Simulator } from '../simulator/index.ts'
import { startReceiver, type Receiver } from './helpers/sim-receiver.ts'
import { call, nodeInfo, runV2, sleep, until } from './helpers/sim-client.ts'

const KEY = 'key-gamma-0003'
const KEY2 = 'key-delta-0004'

let sim: Simulator
let receiver: Receiver

t.beforeEach(async () => {
  sim = await startSimulator({
    seed: 11,
    // Room for every task these tests start: a busy machine stretches 50 ms tasks, and the
    // real limit (421) must not be mistaken for an injected one.
    accounts: [
      { apiKey: KEY, concurrency: 50 },
      { apiKey: KEY2, concurrency: 50 },
    ],
    config: { callbackRetry: { attempts: 3, intervalMs: 40 } },
  })
  receiver = await startReceiver()
})
t.afterEach(async () => {
  await sim.close()
  await receiver.close()
})

const hook = (ref: string) => `${receiver.url}/hooks/${ref}`

t.test('errorCode: one code of each class, v2 and classic shapes, nothing created', async (t) => {
  const codes = ['421', '415', '1011', '802', '416', '301', '1505', '1000', '1012']
  for (const code of codes) {
    sim.inject({ kind: 'errorCode', code })
    const res = await runV2(sim.url, KEY, { webhookUrl: hook(`ec-${code}`) })
    t.equal(res.status, 200, `${code}: HTTP 200`)
    t.match(res.json, { taskId: '', status: '', errorCode: code, errorMessage: /\w/, results: null }, `${code}: v2 shape`)
  }
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '', 'one-shot rules are used up')

  sim.inject({ kind: 'errorCode', code: 421 })
  const classic = await call(sim.url, 'POST', '/task/openapi/ai-app/run', { body: { apiKey: KEY, webappId: '1', nodeInfoList: nodeInfo } })
  t.same(classic.json, { code: 421, msg: 'TASK_QUEUE_MAXED', data: null })

  t.equal(sim.ledger.tasks.length, 1, 'only the unfaulted create made a task')
  t.same(
    sim.ledger.submissions.filter((s) => s.fault === 'errorCode').map((s) => s.outcome),
    [...codes, '421']
  )
})

t.test('fault filters: apiKey, path, times', async (t) => {
  const handle = sim.inject({ kind: 'errorCode', code: '1003', apiKey: KEY2, times: 2 })
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '', 'other key unaffected')
  t.equal((await runV2(sim.url, KEY2)).json.errorCode, '1003')
  t.equal(handle.remaining(), 1)
  t.equal((await runV2(sim.url, KEY2)).json.errorCode, '1003')
  t.equal((await runV2(sim.url, KEY2)).json.errorCode, '')

  const taskId = (await runV2(sim.url, KEY)).json.taskId
  sim.inject({ kind: 'errorCode', code: 1000, path: '/openapi/v2/query' })
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '', 'path rule leaves creates alone')
  const q = await call(sim.url, 'POST', '/openapi/v2/query', { key: KEY, body: { taskId } })
  t.match(q.json, { errorCode: '1000' })
  sim.inject({ kind: 'errorCode', code: 1000, path: /^\/task\/openapi\/status/ })
  t.match((await call(sim.url, 'POST', '/task/openapi/status', { body: { apiKey: KEY, taskId } })).json, { code: 1000 })

  const forever = sim.inject({ kind: 'errorCode', code: '421', times: Infinity })
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '421')
  forever.cancel()
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '')
})

t.test('http5xx: JSON or empty body; nothing created', async (t) => {
  sim.inject({ kind: 'http5xx', status: 500 })
  const json = await runV2(sim.url, KEY)
  t.equal(json.status, 500)
  t.match(json.json, { status: 500 })
  sim.inject({ kind: 'http5xx', status: 502, body: 'empty' })
  const empty = await runV2(sim.url, KEY)
  t.equal(empty.status, 502)
  t.equal(empty.text, '')
  sim.inject({ kind: 'http5xx' })
  t.equal((await runV2(sim.url, KEY)).status, 503)
  t.equal(sim.ledger.tasks.length, 0)
  t.same(
    sim.ledger.submissions.map((s) => s.outcome),
    ['http5xx', 'http5xx', 'http5xx']
  )
})

t.test('html: a proxy error page, with 502 or 200', async (t) => {
  sim.inject({ kind: 'html' })
  const res = await runV2(sim.url, KEY)
  t.equal(res.status, 502)
  t.match(res.contentType, 'text/html')
  t.match(res.text, /<html>[\s\S]*502 Bad Gateway[\s\S]*nginx[\s\S]*<\/html>/)
  t.equal(res.json, null, 'not JSON')
  sim.inject({ kind: 'html', status: 200 })
  const ok = await runV2(sim.url, KEY)
  t.equal(ok.status, 200)
  t.match(ok.text, /<html>/)
  t.equal(sim.ledger.tasks.length, 0)
})

t.test('slow: answered after delayMs; a client that gave up creates nothing', async (t) => {
  sim.inject({ kind: 'slow', delayMs: 150 })
  const started = Date.now()
  const res = await runV2(sim.url, KEY)
  t.ok(Date.now() - started >= 140, 'delayed')
  t.equal(res.json.errorCode, '')

  sim.inject({ kind: 'slow', delayMs: 500 })
  await t.rejects(runV2(sim.url, KEY, {}, '1', AbortSignal.timeout(150)))
  await until(() => sim.ledger.submissions.at(-1)?.outcome === 'abandoned', 3000, 'the slow request to be dropped')
  t.equal(sim.ledger.tasks.length, 1, 'the abandoned request created nothing')
})

t.test('acceptThenHang: client times out, the task runs and calls back', async (t) => {
  sim.inject({ kind: 'acceptThenHang' })
  await t.rejects(runV2(sim.url, KEY, { webhookUrl: hook('hang-1') }, '1', AbortSignal.timeout(200)), { name: 'TimeoutError' })
  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.path, '/hooks/hang-1')
  t.match(callback!.body, { event: 'TASK_END', eventData: { status: 'SUCCESS' } })
  const sub = sim.ledger.submissions[0]!
  t.match(sub, { outcome: 'accepted', fault: 'acceptThenHang', jobRef: '/hooks/hang-1' })
  t.equal(sim.ledger.task(sub.taskId!)?.status, 'SUCCESS')

  sim.inject({ kind: 'acceptThenHang', hangMs: 100 })
  const late = await runV2(sim.url, KEY)
  t.match(late.json, { taskId: /^\d{19}$/ }, 'with hangMs the answer comes late')
})

t.test('acceptThenDrop: task created, socket closed without an answer', async (t) => {
  sim.inject({ kind: 'acceptThenDrop' })
  await t.rejects(runV2(sim.url, KEY, { webhookUrl: hook('drop') }))
  await receiver.waitFor(1)
  t.equal(sim.ledger.tasks.length, 1)
  t.match(sim.ledger.submissions[0], { outcome: 'accepted', fault: 'acceptThenDrop' })
})

t.test('callbackEarly: the callback arrives before the create answer', async (t) => {
  sim.inject({ kind: 'callbackEarly' })
  const res = await runV2(sim.url, KEY, { webhookUrl: hook('early') })
  const answeredAt = Date.now()
  t.equal(receiver.received.length, 1, 'callback already received')
  t.ok(receiver.received[0]!.at <= answeredAt)
  t.equal(receiver.received[0]!.body.taskId, res.json.taskId)
  t.equal(res.json.status, 'QUEUED', 'the answer still says QUEUED')
})

t.test('callbackDuplicate: N copies, sequential or concurrent', async (t) => {
  sim.inject({ kind: 'callbackDuplicate', copies: 3, concurrent: true })
  const res = await runV2(sim.url, KEY, { webhookUrl: hook('dup') })
  const got = await receiver.waitFor(3)
  t.ok(got.every((c) => c.body.taskId === res.json.taskId))
  sim.inject({ kind: 'callbackDuplicate' })
  await runV2(sim.url, KEY, { webhookUrl: hook('dup2') })
  await receiver.waitFor(5)
  t.same(
    sim.ledger.callbacks
      .filter((c) => c.taskId === res.json.taskId)
      .map((c) => c.copy)
      .sort(),
    [1, 2, 3]
  )
})

t.test('callbackLost and callbackDelay', async (t) => {
  sim.inject({ kind: 'callbackLost' })
  const lost = await runV2(sim.url, KEY, { webhookUrl: hook('lost') })
  sim.inject({ kind: 'callbackDelay', delayMs: 600 })
  const delayed = await runV2(sim.url, KEY, { webhookUrl: hook('delayed') })
  await until(() => sim.ledger.task(delayed.json.taskId)?.status === 'SUCCESS', 3000, 'task end')
  t.pass('task ended')
  t.equal(receiver.received.length, 0, 'callback not yet sent')
  const [callback] = await receiver.waitFor(1)
  t.equal(callback!.body.taskId, delayed.json.taskId)
  await sleep(50)
  t.equal(receiver.received.length, 1, 'the lost one never came')
  t.same(sim.ledger.callbacksFor(lost.json.taskId), [])
  t.same(sim.ledger.task(lost.json.taskId)?.faults, ['callbackLost'])
})

t.test('callback retry: the receiver answers 500 twice, then 200', async (t) => {
  receiver.answerWith((i) => (i < 2 ? 500 : 200))
  const res = await runV2(sim.url, KEY, { webhookUrl: hook('retry') })
  await receiver.waitFor(3)
  await sleep(100)
  t.equal(receiver.received.length, 3, 'no more after a 2xx')
  t.match(sim.ledger.callbacksFor(res.json.taskId), [
    { attempt: 1, status: 500 },
    { attempt: 2, status: 500 },
    { attempt: 3, status: 200 },
  ])

  receiver.answerWith(() => 503)
  const res2 = await runV2(sim.url, KEY, { webhookUrl: hook('retry-forever') })
  await receiver.waitFor(6)
  await sleep(150)
  t.equal(sim.ledger.callbacksFor(res2.json.taskId).length, 3, 'gives up after attempts')

  const closed = await startReceiver()
  const url = closed.url
  await closed.close()
  const res3 = await runV2(sim.url, KEY, { webhookUrl: `${url}/hooks/refused` })
  await until(() => sim.ledger.callbacksFor(res3.json.taskId).length === 3, 3000, 'three attempts')
  t.match(sim.ledger.callbacksFor(res3.json.taskId), [
    { attempt: 1, status: null, error: 'ECONNREFUSED' },
    { attempt: 2, error: 'ECONNREFUSED' },
    { attempt: 3, error: 'ECONNREFUSED' },
  ])
})

t.test('callbacks only go to loopback hosts', async (t) => {
  const res = await runV2(sim.url, KEY, { webhookUrl: 'https://example.com/hooks/x' })
  await until(() => sim.ledger.callbacksFor(res.json.taskId).length > 0, 3000, 'a delivery attempt')
  t.match(sim.ledger.callbacksFor(res.json.taskId), [{ status: null, error: /refused/ }])
})

t.test('callbackOutOfOrder: stale event, then a contradicting second TASK_END', async (t) => {
  sim.inject({ kind: 'callbackOutOfOrder' })
  await runV2(sim.url, KEY, { webhookUrl: hook('ooo-1') })
  const [end, stale] = await receiver.waitFor(2)
  t.match(end!.body, { event: 'TASK_END', eventData: { status: 'SUCCESS' } })
  t.match(stale!.body, { event: 'TASK_START', eventData: { status: 'RUNNING' } })

  sim.inject({ kind: 'callbackOutOfOrder', variant: 'second-end' })
  await runV2(sim.url, KEY, { webhookUrl: hook('ooo-2') })
  const got = await receiver.waitFor(4)
  t.match(got[2]!.body, { event: 'TASK_END', eventData: { status: 'SUCCESS' } })
  t.match(got[3]!.body, { event: 'TASK_END', eventData: { status: 'FAILED', errorCode: '805' } })
  t.equal(got[2]!.body.taskId, got[3]!.body.taskId)
})

t.test('taskFailure injection', async (t) => {
  sim.inject({ kind: 'taskFailure', failedReason: { exception_message: 'CUDA out of memory' } })
  await runV2(sim.url, KEY, { webhookUrl: hook('fail') })
  const [callback] = await receiver.waitFor(1)
  t.match(callback!.body, { eventData: { status: 'FAILED', errorCode: '805', failedReason: { exception_message: 'CUDA out of memory' } } })
})

t.test('probabilistic faults repeat for the same seed', async (t) => {
  const runChaos = async (seed: number) => {
    const chaos = await startSimulator({
      seed,
      accounts: [{ apiKey: KEY, concurrency: 100 }],
      config: { taskDurationMs: 5, faultRates: { errorCode: 0.2, http5xx: 0.1, html: 0.1 }, failureRate: 0.2 },
    })
    try {
      const outcomes: string[] = []
      for (let i = 0; i < 40; i++) {
        const res = await runV2(chaos.url, KEY)
        outcomes.push(res.status !== 200 || res.json === null ? `http${res.status}` : res.json.errorCode || 'ok')
      }
      await until(() => chaos.ledger.tasks.every((task) => task.endedAt !== null), 5000, 'chaos tasks to end')
      const failed = chaos.ledger.tasks.filter((task) => task.status === 'FAILED').length
      return { outcomes, failed }
    } finally {
      await chaos.close()
    }
  }
  const a = await runChaos(5)
  const b = await runChaos(5)
  const c = await runChaos(6)
  t.same(a, b, 'same seed, same faults')
  t.not(JSON.stringify(a), JSON.stringify(c), 'another seed, other faults')
  t.ok(a.outcomes.filter((o) => o === 'ok').length > 10, 'mostly fine')
  t.ok(
    a.outcomes.some((o) => o !== 'ok'),
    'some faults'
  )
})

t.test('close() cancels timers, hanging answers and pending callbacks', async (t) => {
  const local = await startSimulator({ accounts: [{ apiKey: KEY }], config: { taskDurationMs: 100 } })
  local.inject({ kind: 'acceptThenHang' })
  const hanging = runV2(local.url, KEY, { webhookUrl: hook('never') })
  await sleep(30)
  await local.close()
  await t.rejects(hanging, 'the hanging request is cut')
  await sleep(150)
  t.equal(receiver.received.length, 0, 'no callback after close')
})
