// src/webhook/parse-callback.ts on its own: no database, no HTTP. The captured callbacks of
// test/fixtures/runninghub/ (classic sample 1, v2 samples 2 and 10, the classic eventData inside
// getWebhookDetail's sample 7), both shapes' failures and cancellations, events that are not
// TASK_END, ends that cannot be acted on as sent, and malformed bodies: each refusal is a
// CallbackFormatError whose message names what is wrong.
import t, { type Test } from 'tap'
import { CallbackFormatError, parseCallback } from '../src/webhook/parse-callback.ts'
import * as captured from './fixtures/runninghub-captured.ts'

t.test('classic TASK_END (sample 1): eventData is a JSON string; one output per fileUrl', async (t) => {
  t.same(parseCallback(JSON.parse(captured.sample1ClassicTaskEndCallback)), {
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
  })
})

t.test('classic eventData from getWebhookDetail (sample 7) reads the same way', async (t) => {
  const detail = JSON.parse(captured.sample7GetWebhookDetail).data
  t.match(parseCallback({ event: 'TASK_END', taskId: detail.taskId, eventData: detail.eventData }), {
    kind: 'task_end',
    taskId: '1904444422770114561',
    end: { status: 'SUCCESS', outputs: [{ nodeId: '9', outputType: 'png' }], usage: { taskCostTime: '78' } },
  })
})

t.test('v2 TASK_END (samples 2 and 10): eventData is the task object', async (t) => {
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
    'sample 2: no usage, no errorCode, eventData first'
  )
  const ten = parseCallback(JSON.parse(captured.sample10V2TaskEndCallback))
  t.same(
    ten,
    {
      kind: 'task_end',
      taskId: '2052287938007814145',
      end: {
        status: 'SUCCESS',
        outputs: [
          {
            url: 'https://rh-images-1252422369.cos.ap-beijing.myqcloud.com/c91531cbf3337fbe998612da4112ea99/output/c0cfe90a-3d90-465e-8852-5fbb6089cc54.jpg',
            outputType: 'jpg',
            text: null,
          },
        ],
        usage: {
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
        error_code: null,
        error_message: null,
      },
    },
    'sample 10: the cost kept, the lossy numeric taskUsageList[].taskId dropped'
  )
})

t.test('task ids: a number becomes a string; a v2 id may come from eventData alone', async (t) => {
  t.match(parseCallback({ event: 'TASK_END', taskId: 123, eventData: { status: 'CANCEL' } }), { kind: 'task_end', taskId: '123' })
  t.match(
    parseCallback({ event: 'TASK_END', eventData: { taskId: '456', status: 'CANCEL' } }),
    { kind: 'task_end', taskId: '456' },
    'no top-level taskId'
  )
  t.match(
    parseCallback({ event: 'TASK_END', taskId: '1', eventData: { taskId: '2', status: 'CANCEL' } }),
    { taskId: '1' },
    'the top-level one wins'
  )
  t.match(
    parseCallback({ event: 'TASK_END', taskId: null, eventData: { status: 'CANCEL' } }),
    { kind: 'task_end', taskId: null },
    'none at all: null (the signed URL names the job)'
  )
})

t.test('v2 failures and cancellations', async (t) => {
  t.same(
    parseCallback({
      event: 'TASK_END',
      taskId: '9',
      eventData: { taskId: '9', status: 'FAILED', errorCode: '805', errorMessage: 'workflow failed', failedReason: {} },
    }),
    {
      kind: 'task_end',
      taskId: '9',
      end: { status: 'FAILED', outputs: null, usage: null, error_code: '805', error_message: 'workflow failed', retryable: false },
    },
    'FAILED with a code and a message; failedReason {} says nothing'
  )
  t.match(
    parseCallback({
      event: 'TASK_END',
      taskId: '9',
      eventData: {
        status: 'FAILED',
        errorCode: 805,
        failedReason: { node_name: 'KSampler', exception_type: 'OutOfMemoryError', exception_message: 'CUDA out of memory' },
      },
    }),
    {
      end: { status: 'FAILED', error_code: '805', error_message: 'KSampler: OutOfMemoryError: CUDA out of memory', retryable: false },
    },
    'failedReason as one line; a numeric code as a string'
  )
  t.match(
    parseCallback({
      event: 'TASK_END',
      taskId: '9',
      eventData: {
        status: 'FAILED',
        failedReason: { node_name: 'LoadImage', exception_type: 'OSError', exception_message: '[Errno 116] Stale file handle' },
      },
    }),
    {
      end: {
        status: 'FAILED',
        error_code: 'TASK_FAILED',
        error_message: 'LoadImage: OSError: [Errno 116] Stale file handle',
        retryable: true,
      },
    },
    "RunningHub's machine failed: retryable; no errorCode reads TASK_FAILED"
  )
  t.match(
    parseCallback({ event: 'TASK_END', taskId: '9', eventData: { status: 'FAILED', errorCode: '', errorMessage: '' } }),
    {
      end: { error_code: 'TASK_FAILED', error_message: 'the task failed' },
    },
    'empty strings are no code and no message'
  )
  t.same(
    parseCallback({ event: 'TASK_END', taskId: '9', eventData: { status: 'CANCEL', results: [{ url: 'x' }] } }),
    {
      kind: 'task_end',
      taskId: '9',
      end: { status: 'CANCEL', outputs: null, usage: null, error_code: null, error_message: null },
    },
    'CANCEL: no outputs, even if some are listed'
  )
  t.match(
    parseCallback({ event: 'TASK_END', taskId: '9', eventData: { status: 'success', results: [{ url: 'u' }] } }),
    { end: { status: 'SUCCESS' } },
    'the status in any case'
  )
})

t.test('classic failures', async (t) => {
  t.same(
    parseCallback({
      event: 'TASK_END',
      taskId: '7',
      eventData: JSON.stringify({
        code: 805,
        msg: 'APIKEY_TASK_FAILED',
        data: { failedReason: { node_name: 'LoadVideo', exception_type: 'FileNotFoundError', exception_message: 'No such file' } },
      }),
    }),
    {
      kind: 'task_end',
      taskId: '7',
      end: {
        status: 'FAILED',
        outputs: null,
        usage: null,
        error_code: '805',
        error_message: 'LoadVideo: FileNotFoundError: No such file',
        retryable: true,
      },
    },
    'code 805 with a failedReason (a missing file in LoadVideo: retryable)'
  )
  t.match(
    parseCallback({ event: 'TASK_END', taskId: '7', eventData: JSON.stringify({ code: '805', msg: 'workflow error', data: [] }) }),
    {
      end: { status: 'FAILED', error_code: '805', error_message: 'workflow error', retryable: false },
    },
    'no failedReason: the msg'
  )
  t.match(
    parseCallback({ event: 'TASK_END', taskId: '7', eventData: JSON.stringify({ code: 805 }) }),
    { end: { status: 'FAILED', error_code: '805', error_message: null } },
    'neither'
  )
  t.match(
    parseCallback({
      event: 'TASK_END',
      taskId: '7',
      eventData: { code: '0', msg: 'success', data: [{ fileUrl: 'https://x/y.png', fileType: 'png', nodeId: '9' }] },
    }),
    { kind: 'task_end', end: { status: 'SUCCESS', usage: null } },
    'a classic object (not a string), code "0", no taskCostTime: no usage'
  )
})

t.test('events other than TASK_END are ignored, named', async (t) => {
  t.same(parseCallback({ event: 'TASK_START', taskId: '5' }), { kind: 'ignored', event: 'TASK_START', taskId: '5' })
  t.same(
    parseCallback({ event: 'TASK_PROGRESS', eventData: 'not even JSON' }),
    { kind: 'ignored', event: 'TASK_PROGRESS', taskId: null },
    'eventData is not read'
  )
  t.same(
    parseCallback({ event: 'task_end', taskId: '5', eventData: {} }),
    { kind: 'ignored', event: 'task_end', taskId: '5' },
    'the event name is exact'
  )
})

t.test("ends that cannot be acted on as sent are unsettled (RunningHub's query decides)", async (t) => {
  t.same(parseCallback({ event: 'TASK_END', taskId: '5', eventData: { taskId: '5', results: [] } }), {
    kind: 'unsettled',
    taskId: '5',
    reason: 'TASK_END without a status',
  })
  t.same(
    parseCallback({ event: 'TASK_END', taskId: '5', eventData: { status: '' } }),
    { kind: 'unsettled', taskId: '5', reason: 'TASK_END without a status' },
    'an empty status'
  )
  t.same(parseCallback({ event: 'TASK_END', taskId: '5', eventData: { status: 'SUCCESS', results: [] } }), {
    kind: 'unsettled',
    taskId: '5',
    reason: 'SUCCESS without results',
  })
  t.same(
    parseCallback({ event: 'TASK_END', taskId: '5', eventData: { status: 'SUCCESS', results: null } }),
    { kind: 'unsettled', taskId: '5', reason: 'SUCCESS without results' },
    'results null'
  )
  t.same(
    parseCallback({ event: 'TASK_END', taskId: '5', eventData: JSON.stringify({ code: 0, msg: 'success', data: [] }) }),
    { kind: 'unsettled', taskId: '5', reason: 'SUCCESS without results' },
    'classic, empty data'
  )
})

/** The CallbackFormatError parseCallback throws for this body (fails the test if it throws nothing). */
function refusal(t: Test, body: unknown): CallbackFormatError | null {
  try {
    parseCallback(body)
  } catch (error) {
    t.ok(error instanceof CallbackFormatError, `a CallbackFormatError (${(error as Error).name})`)
    t.equal((error as Error).name, 'CallbackFormatError')
    return error as CallbackFormatError
  }
  t.fail(`accepted: ${JSON.stringify(body)}`)
  return null
}

t.test('malformed bodies: a CallbackFormatError naming the problem', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['null', null, /^not a RunningHub callback \(body: /],
    ['a string', 'TASK_END', /^not a RunningHub callback \(body: /],
    ['an array', [captured.sample2V2TaskEndCallback], /^not a RunningHub callback \(body: .*array/],
    ['no event', { taskId: '1', eventData: {} }, /^not a RunningHub callback \(event: /],
    ['event not a string', { event: 7, taskId: '1' }, /^not a RunningHub callback \(event: /],
    ['event too long', { event: 'E'.repeat(65) }, /^not a RunningHub callback \(event: /],
    ['taskId an object', { event: 'TASK_END', taskId: { id: 1 }, eventData: {} }, /^not a RunningHub callback \(taskId: /],
    ['taskId too long', { event: 'TASK_END', taskId: '1'.repeat(65), eventData: {} }, /^not a RunningHub callback \(taskId: /],
    ['eventData a number', { event: 'TASK_END', taskId: '1', eventData: 42 }, /^not a RunningHub callback \(eventData: /],
    [
      'eventData a string that is not JSON',
      { event: 'TASK_END', taskId: '1', eventData: '{"code":0,"msg":"success","data":[' },
      /^eventData is a string but not JSON$/,
    ],
    ['TASK_END without eventData', { event: 'TASK_END', taskId: '1' }, /^TASK_END without eventData$/],
    ['TASK_END with eventData null', { event: 'TASK_END', taskId: '1', eventData: null }, /^TASK_END without eventData$/],
    ['eventData a JSON string of a number', { event: 'TASK_END', taskId: '1', eventData: '5' }, /^TASK_END without eventData$/],
    [
      'eventData a JSON array',
      { event: 'TASK_END', taskId: '1', eventData: '[]' },
      /^eventData: Invalid input: expected object, received array$/,
    ],
    [
      'classic code an object',
      { event: 'TASK_END', taskId: '1', eventData: JSON.stringify({ code: { n: 0 }, data: [] }) },
      /^eventData \(classic\): code: /,
    ],
    [
      'classic data a string',
      { event: 'TASK_END', taskId: '1', eventData: JSON.stringify({ code: 0, data: 'x' }) },
      /^eventData \(classic\): data: /,
    ],
    [
      'v2 results not a list',
      { event: 'TASK_END', taskId: '1', eventData: { status: 'SUCCESS', results: 'https://x' } },
      /^eventData: results: /,
    ],
    ['v2 status a number', { event: 'TASK_END', taskId: '1', eventData: { status: 2 } }, /^eventData: status: /],
    [
      'v2 failedReason a string',
      { event: 'TASK_END', taskId: '1', eventData: { status: 'FAILED', failedReason: 'boom' } },
      /^eventData: failedReason: /,
    ],
    [
      'v2 usage a list',
      { event: 'TASK_END', taskId: '1', eventData: { status: 'SUCCESS', results: [{}], usage: [] } },
      /^eventData: usage: /,
    ],
    [
      'v2 status not an end',
      { event: 'TASK_END', taskId: '1', eventData: { status: 'RUNNING' } },
      /^TASK_END with status "RUNNING" \(expected SUCCESS, FAILED or CANCEL\)$/,
    ],
    ['v2 status unknown', { event: 'TASK_END', taskId: '1', eventData: { status: 'EXPLODED' } }, /^TASK_END with status "EXPLODED"/],
  ]
  for (const [name, body, message] of cases) {
    const error = refusal(t, body)
    t.match(error?.message, message, `${name}: ${error?.message}`)
  }
})
