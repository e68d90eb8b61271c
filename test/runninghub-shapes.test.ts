// The pure readers of RunningHub's answers, fed the captured samples and the
// error shapes seen in production. No database, no simulator: the client
// talks to a tiny HTTP server that answers exactly the bytes given.
import t from 'tap'
import { createServer } from 'node:http'
import { existsSync, readFileSync } from 'node:fs'
import { RunningHubClient, promptRefusal } from '../src/runninghub/client.ts'
import { classifyErrorCode, isMachineFailure } from '../src/runninghub/classify.ts'
import { taskEndFromQuery, verdictFromTask } from '../src/runninghub/task-callback.ts'
import { parseCallback } from '../src/webhook/parse-callback.ts'
import * as captured from './fixtures/runninghub-captured.ts'
import { join } from 'node:path'
import { projectRoot } from '../src/db/migrate.ts'

// The captured samples' source, beside the project (CI lays a copy there); docs/ quotes the same text.
const samplesFile = join(projectRoot, '..', 'shared', 'runninghub-samples.md')
t.test(
  'the fixtures are the captured samples, byte for byte',
  { skip: !existsSync(samplesFile) && 'samples file not on this machine' },
  async (t) => {
    const text = readFileSync(samplesFile, 'utf8')
    for (const [name, body] of Object.entries(captured)) t.ok(text.includes(`\n${body}\n`), name)
  }
)

/** A RunningHub that answers every request with the next body given. */
async function answering(t: { teardown(fn: () => unknown): void }, ...bodies: string[]) {
  const queue = [...bodies]
  const server = createServer((request, response) => {
    request.resume()
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end(queue.shift() ?? '{}'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const client = new RunningHubClient(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, 2000)
  t.teardown(async () => {
    await client.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return client
}

const nodes = [{ nodeId: '1', fieldName: 'image', fieldValue: 'x.png' }]

t.test('create answers: sample 3 is a task; error codes beside an empty taskId are errors, not tasks', async (t) => {
  const client = await answering(
    t,
    captured.sample3V2RunAnswer,
    '{"taskId":"","status":"FAILED","errorCode":"421","errorMessage":"TASK_QUEUE_MAXED"}',
    '{"taskId":"","errorCode":421,"errorMessage":"TASK_QUEUE_MAXED"}',
    '{"taskId":"","status":"","errorCode":"1520","errorMessage":"TASK_USER_CONCURRENT_LIMIT"}',
    '{"taskId":"","status":"FAILED","errorCode":802,"errorMessage":"APIKEY_UNAUTHORIZED"}',
    '{"taskId":"2013508786110730241","status":"RUNNING","errorCode":"","errorMessage":"","results":null,"promptTips":"{\\"result\\": false, \\"error\\": {\\"message\\": \\"Prompt outputs failed validation\\"}, \\"node_errors\\": {\\"26\\": {\\"errors\\": [{\\"message\\": \\"Value not in list\\"}]}}}"}',
    captured.sample8ClassicCreateAnswerTruncated
  )

  const ok = await client.runAiApp('k', '1', { nodeInfoList: nodes })
  t.match(
    ok,
    { ok: true, value: { taskId: '2013508786110730241', status: 'RUNNING' } },
    'sample 3: accepted, empty node_errors is no refusal'
  )
  t.match(
    await client.runAiApp('k', '1', { nodeInfoList: nodes }),
    { ok: false, kind: 'answer', cls: 'account_full', code: '421', message: 'TASK_QUEUE_MAXED' },
    'FAILED + 421 + empty taskId: the account is full (never MALFORMED_ANSWER)'
  )
  t.match(
    await client.runAiApp('k', '1', { nodeInfoList: nodes }),
    { ok: false, cls: 'account_full', code: '421' },
    'a numeric code without a status'
  )
  t.match(await client.runAiApp('k', '1', { nodeInfoList: nodes }), { ok: false, cls: 'account_full', code: '1520' })
  t.match(await client.runAiApp('k', '1', { nodeInfoList: nodes }), { ok: false, cls: 'account_broken', code: '802' })
  t.match(
    await client.runAiApp('k', '1', { nodeInfoList: nodes }),
    { ok: false, cls: 'bad_request', code: 'NODE_ERRORS', message: /Prompt outputs failed validation.*node_errors/ },
    'non-empty node_errors in promptTips: a refused submission'
  )
  t.match(
    await client.runAiApp('k', '1', { nodeInfoList: nodes }),
    { ok: false, cls: 'transient', code: 'NOT_JSON' },
    'sample 8 (truncated): not JSON, transient'
  )
})

t.test('query answers: sample 4 ends the task; unknown or gone tasks are one class', async (t) => {
  const client = await answering(
    t,
    captured.sample4V2QuerySuccess,
    '{"taskId":"1","status":"","errorCode":"807","errorMessage":"APIKEY_TASK_NOT_FOUND"}',
    '{"taskId":"","errorCode":423,"errorMessage":"TASK_NOT_FOUNED"}',
    '{"code":1004,"msg":"task does not exist or expired","data":null}'
  )
  const answer = await client.query('k', '2013508786110730241')
  t.ok(answer.ok)
  if (!answer.ok) return
  t.same(taskEndFromQuery(answer.value), {
    status: 'SUCCESS',
    outputs: [
      {
        url: 'https://rh-images-1252422369.cos.ap-beijing.myqcloud.com/b04e28cad0ee39193921a30a2eb4dc00/output/ComfyUI_00001_plhjr_1768892915.png',
        nodeId: '2',
        outputType: 'png',
        text: null,
      },
    ],
    usage: { consumeMoney: null, consumeCoins: null, taskCostTime: '0', thirdPartyConsumeMoney: null },
    error_code: null,
    error_message: null,
  })
  for (const code of ['807', '423', '1004'])
    t.match(await client.query('k', '1'), { ok: false, cls: 'task_gone', code }, `${code}: task gone`)
})

t.test('classification', async (t) => {
  for (const code of [807, '423', 1004, 'APIKEY_TASK_NOT_FOUND']) t.equal(classifyErrorCode(code), 'task_gone', String(code))
  t.equal(classifyErrorCode('421'), 'account_full')
  t.ok(isMachineFailure({ node_name: 'LoadImage', exception_type: 'OSError', exception_message: '[Errno 116] Stale file handle' }))
  t.ok(
    isMachineFailure({
      node_name: 'LoadVideo',
      exception_type: 'FileNotFoundError',
      exception_message: 'No such file or directory: /data/input/x.mp4',
    })
  )
  t.ok(isMachineFailure({ exception_message: 'Stale file handle' }), 'a stale mount anywhere')
  t.notOk(isMachineFailure({ node_name: 'KSampler', exception_type: 'OutOfMemoryError', exception_message: 'CUDA out of memory' }))
  t.notOk(
    isMachineFailure({ node_name: 'SaveImage', exception_type: 'OSError', exception_message: 'disk quota' }),
    "OSError outside the loaders is the workflow's"
  )
  t.notOk(isMachineFailure({}))
  t.equal(promptRefusal('{"result": true, "error": null, "outputs_to_execute": ["4"], "node_errors": {}}'), null)
  t.equal(promptRefusal(''), null)
})

t.test('task objects: failedReason {} hides nothing; no status or no results is unsettled', async (t) => {
  t.match(verdictFromTask({ taskId: '1', status: 'FAILED', errorCode: '805', errorMessage: 'workflow failed', failedReason: {} }), {
    kind: 'ended',
    end: { status: 'FAILED', error_code: '805', error_message: 'workflow failed', retryable: false },
  })
  t.match(
    verdictFromTask({
      taskId: '1',
      status: 'FAILED',
      errorCode: '805',
      errorMessage: '',
      failedReason: { node_name: 'LoadImage', exception_type: 'OSError', exception_message: 'Stale file handle' },
    }),
    { kind: 'ended', end: { error_message: 'LoadImage: OSError: Stale file handle', retryable: true } }
  )
  t.same(verdictFromTask({ taskId: '1', status: 'SUCCESS', results: [] }), { kind: 'unsettled', reason: 'SUCCESS without results' })
  t.same(verdictFromTask({ taskId: '1', results: [{ url: 'u' }] }), { kind: 'unsettled', reason: 'TASK_END without a status' })
  t.same(verdictFromTask({ taskId: '1', status: 'RUNNING' }), { kind: 'not_ended', status: 'RUNNING' })
})

t.test('callbacks: every captured shape parses', async (t) => {
  t.same(
    parseCallback(JSON.parse(captured.sample1ClassicTaskEndCallback)),
    {
      kind: 'task_end',
      taskId: '1904163390028185602',
      end: {
        status: 'SUCCESS',
        outputs: [
          {
            url: 'https://rh-images.xiaoyaoyou.com/de0db6f2564c8697b07df55a77f07be9/output/ComfyUI_00033_hpgko_1742822929.png',
            outputType: 'png',
            nodeId: '9',
          },
        ],
        usage: { taskCostTime: '0' },
        error_code: null,
        error_message: null,
      },
    },
    'sample 1 (classic)'
  )
  t.same(
    parseCallback(JSON.parse(captured.sample2V2TaskEndCallback)),
    {
      kind: 'task_end',
      taskId: '2018819290219810818',
      end: {
        status: 'SUCCESS',
        outputs: [{ url: 'https://...mp4', outputType: 'mp4' }],
        usage: null,
        error_code: null,
        error_message: null,
      },
    },
    'sample 2 (v2, no usage)'
  )
  const ten = parseCallback(JSON.parse(captured.sample10V2TaskEndCallback))
  t.match(ten, { kind: 'task_end', taskId: '2052287938007814145', end: { status: 'SUCCESS', error_code: null } }, 'sample 10')
  if (ten.kind === 'task_end') {
    t.same(
      ten.end.usage,
      {
        consumeMoney: null,
        consumeCoins: null,
        taskCostTime: '0',
        thirdPartyConsumeMoney: '0.14',
        taskUsageList: [
          {
            parentTaskId: null,
            taskStatus: 'SUCCESS',
            usage: { consumeMoney: null, consumeCoins: null, taskCostTime: '0', thirdPartyConsumeMoney: '0.14' },
          },
        ],
      },
      'usage kept; the lossy taskUsageList[].taskId is dropped, never matched on'
    )
  }
  // getWebhookDetail (sample 7) carries a classic eventData: the same parser reads it.
  const detail = JSON.parse(captured.sample7GetWebhookDetail).data
  t.match(parseCallback({ event: 'TASK_END', taskId: detail.taskId, eventData: detail.eventData }), {
    kind: 'task_end',
    taskId: '1904444422770114561',
    end: { status: 'SUCCESS', usage: { taskCostTime: '78' } },
  })
  t.same(parseCallback({ event: 'TASK_END', taskId: '5', eventData: { taskId: '5', results: [] } }), {
    kind: 'unsettled',
    taskId: '5',
    reason: 'TASK_END without a status',
  })
  t.same(parseCallback({ event: 'TASK_END', taskId: '5', eventData: { taskId: '5', status: 'SUCCESS', results: [] } }), {
    kind: 'unsettled',
    taskId: '5',
    reason: 'SUCCESS without results',
  })
  t.same(parseCallback({ event: 'TASK_END', taskId: '5', eventData: JSON.stringify({ code: 0, msg: 'success', data: [] }) }), {
    kind: 'unsettled',
    taskId: '5',
    reason: 'SUCCESS without results',
  })
})
