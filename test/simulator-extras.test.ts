// Smaller corners: webhook detail/retry, account updates, and the standalone entry point.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { startSimulator } from '../simulator/index.ts'
import { startReceiver } from './helpers/sim-receiver.ts'
import { call, runV2, sleep, until } from './helpers/sim-client.ts'

const KEY = 'key-epsilon-0005'

t.test('getWebhookDetail and retryWebhook', async (t) => {
  const sim = await startSimulator({ accounts: [{ apiKey: KEY }], config: { callbackRetry: { attempts: 2, intervalMs: 20 } } })
  const receiver = await startReceiver()
  t.teardown(async () => {
    await sim.close()
    await receiver.close()
  })
  receiver.answerWith((i) => (i < 2 ? 500 : 200))
  const taskId = (await runV2(sim.url, KEY, { webhookUrl: `${receiver.url}/hooks/r` })).json.taskId
  await receiver.waitFor(2)
  const detailOf = () => call(sim.url, 'POST', '/task/openapi/getWebhookDetail', { body: { apiKey: KEY, taskId } })
  await until(async () => (await detailOf()).json.data?.callbackStatus === 'FAILED', 3000, 'delivery to give up')
  const detail = await call(sim.url, 'POST', '/task/openapi/getWebhookDetail', { body: { apiKey: KEY, taskId } })
  t.match(detail.json, {
    code: 0,
    data: { taskId, callbackStatus: 'FAILED', retryCount: 1, webhookUrl: `${receiver.url}/hooks/r`, eventData: String },
  })

  const retry = await call(sim.url, 'POST', '/task/openapi/retryWebhook', {
    body: { apiKey: KEY, webhookId: detail.json.data.id, webhookUrl: `${receiver.url}/hooks/r2` },
  })
  t.same(retry.json, { code: 0, msg: 'success', data: null })
  const got = await receiver.waitFor(3)
  t.equal(got[2]!.path, '/hooks/r2')
  t.equal(got[2]!.body.taskId, taskId)
  await until(async () => (await detailOf()).json.data.callbackStatus === 'SUCCESS', 3000, 'retry to succeed')
  t.pass('detail shows the retried delivery succeeded')
})

t.test('accounts: update in place, concurrency change, summaries show fingerprints only', async (t) => {
  const sim = await startSimulator({ accounts: [{ apiKey: KEY, concurrency: 1 }], config: { taskDurationMs: 2000 } })
  t.teardown(() => sim.close())
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '')
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '421')
  sim.setConcurrency(KEY, 2)
  t.equal((await runV2(sim.url, KEY)).json.errorCode, '')
  sim.addAccount(KEY, { balance: '5.00' })
  t.equal(sim.balance(KEY), '5.00')
  t.equal(sim.queueStatus(KEY).data.totalCurrentTasks, '2', 'running tasks still count after the update')
  const summary = sim.accounts()
  t.match(summary, [{ apiKey: /^key-…[0-9a-f]{8}$/, concurrency: 2, balance: '5.00', running: 2 }])
  t.notMatch(JSON.stringify(summary), KEY)
  t.equal(sim.ledger.concurrency(KEY).maxConcurrency, 2)
})

t.test('queue/status: key types, and a site where it never answers (404 or an error)', async (t) => {
  const sim = await startSimulator({ accounts: [{ apiKey: KEY, concurrency: 4, apiKeyType: 'EXCLUSIVE' }] })
  t.teardown(() => sim.close())
  const answers = await call(sim.url, 'GET', '/openapi/v2/queue/status', { key: KEY })
  t.same(answers.json, {
    code: 0,
    msg: 'success',
    data: { apiKeyType: 'EXCLUSIVE', concurrentLimit: 4, runningCount: '0', queuedCount: '0', totalCurrentTasks: '0' },
  })
  t.throws(() => sim.addAccount('key-other-0001', { apiKeyType: 'ENTERPRISE' as never }), /NORMAL, SHARED or EXCLUSIVE/)

  sim.configure({ queueStatus: 'notFound' })
  const missing = await call(sim.url, 'GET', '/openapi/v2/queue/status', { key: KEY })
  t.equal(missing.status, 404)
  t.match(missing.json, { status: 404, path: '/openapi/v2/queue/status' })
  sim.configure({ queueStatus: 'error' })
  const developing = await call(sim.url, 'GET', '/openapi/v2/queue/status', { key: KEY })
  t.match(developing.json, { code: 1000, data: null })
  const account = await call(sim.url, 'POST', '/uc/openapi/accountStatus', { body: { apikey: KEY } })
  t.match(account.json, { code: 0, data: { remainMoney: '100.00' } }, 'accountStatus answers whatever queue/status does')
})

t.test('standalone entry: prints URL and fingerprints, serves, stops on SIGTERM', async (t) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'simulator/main.ts', '--port', '0', '--keys', `${KEY},other-key-9`, '--task-ms', '20'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    }
  )
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  const deadline = Date.now() + 15000
  while (!/account[\s\S]*account/.test(out) && Date.now() < deadline) await sleep(50)
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
  t.ok(url, 'prints its URL')
  t.notMatch(out, KEY, 'never prints a key')
  t.match(out, /key-…[0-9a-f]{8}/)
  if (url) t.equal((await runV2(url, KEY)).json.errorCode, '')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'clean exit')
})
