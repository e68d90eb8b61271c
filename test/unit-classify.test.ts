// src/runninghub/classify.ts on its own: no database, no HTTP. Every answer class of the table in
// docs/runninghub-api.md ("Error codes, by what rhpool does"), the HTTP statuses, bodies that are
// not JSON (a proxy's HTML page, the truncated sample 8), codes nobody documented, and the
// captured answers of test/fixtures/runninghub/ read as the client reads them.
import t from 'tap'
import {
  classifyAnswer,
  classifyErrorCode,
  classifyHttpStatus,
  isMachineFailure,
  readAnswer,
  readTaskAnswer,
  type AnswerClass,
} from '../src/runninghub/classify.ts'
import * as captured from './fixtures/runninghub-captured.ts'

// The documented table, written out here (not read from the code), numbers and symbolic names.
const documented: Record<Exclude<AnswerClass, 'transient'>, Array<number | string>> = {
  account_full: [
    421,
    415,
    814,
    1003,
    1011,
    1520,
    'TASK_QUEUE_MAXED',
    'TASK_INSTANCE_MAXED',
    'PERSONAL_QUEUE_COUNT_LIMIT',
    'TASK_USER_CONCURRENT_LIMIT',
  ],
  account_broken: [
    801,
    802,
    806,
    811,
    812,
    416,
    436,
    1002,
    1014,
    'APIKEY_UNAUTHORIZED',
    'APIKEY_USER_NOT_FOUND',
    'CORPAPIKEY_INSUFFICIENT_FUNDS',
    'TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET',
    'TASK_CREATE_FAILED_BY_NOT_ENOUGH_POWER_VALUE',
  ],
  bad_request: [
    301,
    380,
    412,
    433,
    435,
    803,
    809,
    810,
    901,
    1001,
    1007,
    1008,
    1009,
    1101,
    1501,
    1505,
    'PARAMS_INVALID',
    'WORKFLOW_NOT_EXISTS',
    'VALIDATE_PROMPT_FAILED',
    'APIKEY_INVALID_NODE_INFO',
    'WORKFLOW_NOT_SAVED_OR_NOT_RUNNING',
    'WEBAPP_NOT_EXISTS',
  ],
  task_failed: [805],
  task_gone: [807, 423, 1004, 'APIKEY_TASK_NOT_FOUND', 'TASK_NOT_FOUNED'],
}
const documentedTransient = [500, 808, 1000, 1005, 1006, 1010, 1012, 1013, 1015, 1504]

t.test('classifyErrorCode: every documented code in its class, as a number and as a string', async (t) => {
  for (const [cls, codes] of Object.entries(documented)) {
    for (const code of codes) {
      t.equal(classifyErrorCode(code), cls, `${code} → ${cls}`)
      if (typeof code === 'number') t.equal(classifyErrorCode(String(code)), cls, `"${code}" → ${cls}`)
    }
  }
  for (const code of documentedTransient) t.equal(classifyErrorCode(code), 'transient', `${code} → transient`)
  t.equal(classifyErrorCode(' 421 '), 'account_full', 'surrounding spaces do not hide a code')
})

t.test('classifyErrorCode: a code nobody documented is transient (retried, bounded), never an account problem', async (t) => {
  for (const code of [99999, '7777', 'SOMETHING_NEW', 'task_queue_maxed', '', '421x'])
    t.equal(classifyErrorCode(code), 'transient', JSON.stringify(code))
})

t.test('classifyHttpStatus: what a status says before the body is read', async (t) => {
  const cases: Array<[number, AnswerClass | null]> = [
    [429, 'account_full'],
    [401, 'account_broken'],
    [403, 'account_broken'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [408, 'transient'],
    [400, 'bad_request'],
    [404, 'bad_request'],
    [413, 'bad_request'],
    [422, 'bad_request'],
    [200, null],
    [204, null],
    [302, null],
  ]
  for (const [status, cls] of cases) t.equal(classifyHttpStatus(status), cls, `HTTP ${status} → ${cls}`)
})

t.test('readAnswer: a body is never assumed to be JSON', async (t) => {
  for (const [name, text] of [
    ['sample 3', captured.sample3V2RunAnswer],
    ['sample 9', captured.sample9QueueStatus],
    ['sample 6', captured.sample6ClassicUpload],
  ] as const) {
    t.same(readAnswer(200, text), { status: 200, json: JSON.parse(text), text }, `${name}: parsed`)
  }
  t.equal(readAnswer(200, captured.sample8ClassicCreateAnswerTruncated).json, null, 'sample 8 (cut off mid-string): not JSON, no throw')
  const html =
    '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>'
  t.same(readAnswer(502, html), { status: 502, json: null, text: html }, 'an HTML page')
  for (const text of ['', 'null', '[1,2]', '"a string"', '42'])
    t.equal(readAnswer(200, text).json, null, `${JSON.stringify(text)}: not a JSON object`)
})

const answer = (status: number, body: string | object) => readAnswer(status, typeof body === 'string' ? body : JSON.stringify(body))
const nginx502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n'

t.test('readTaskAnswer: the captured v2 answers are tasks', async (t) => {
  t.match(
    readTaskAnswer(answer(200, captured.sample3V2RunAnswer)),
    { ok: true, taskId: '2013508786110730241', task: { status: 'RUNNING', errorCode: '' } },
    'sample 3 (run): errorCode "" is no error'
  )
  t.match(
    readTaskAnswer(answer(200, captured.sample4V2QuerySuccess)),
    { ok: true, taskId: '2013508786110730241', task: { status: 'SUCCESS', failedReason: {} } },
    'sample 4 (query)'
  )
  // A v2 callback's eventData is the same task object (samples 2 and 10).
  t.match(
    readTaskAnswer(answer(200, JSON.parse(captured.sample10V2TaskEndCallback).eventData)),
    { ok: true, taskId: '2052287938007814145' },
    'sample 10 eventData'
  )
  t.match(
    readTaskAnswer(answer(200, { code: 0, msg: 'success', data: { taskId: '1910246754753896450', status: 'QUEUED' } })),
    { ok: true, taskId: '1910246754753896450', task: { status: 'QUEUED' } },
    'a task inside a {code, data} envelope'
  )
  t.match(
    readTaskAnswer(answer(200, { taskId: '77', status: 'FAILED', errorCode: '805', errorMessage: 'workflow failed' })),
    { ok: true, taskId: '77', task: { errorCode: '805' } },
    'a FAILED task carries its 805: still a task (its end is read elsewhere)'
  )
  t.match(
    readTaskAnswer(answer(200, { taskId: '78', status: 'failed', errorCode: 805 })),
    { ok: true, taskId: '78' },
    'the state in any case'
  )
})

t.test('readTaskAnswer: error answers, one per class', async (t) => {
  const cases: Array<[string, number, string | object, { cls: AnswerClass; code: string; message: string | RegExp }]> = [
    // Account full: RunningHub names a state beside the code, but the taskId is empty.
    [
      'FAILED + 421 + empty taskId',
      200,
      { taskId: '', status: 'FAILED', errorCode: '421', errorMessage: 'TASK_QUEUE_MAXED' },
      { cls: 'account_full', code: '421', message: 'TASK_QUEUE_MAXED' },
    ],
    [
      'numeric 421, no status',
      200,
      { taskId: '', errorCode: 421, errorMessage: 'TASK_QUEUE_MAXED' },
      { cls: 'account_full', code: '421', message: 'TASK_QUEUE_MAXED' },
    ],
    [
      '1520, empty status',
      200,
      { taskId: '', status: '', errorCode: '1520', errorMessage: 'TASK_USER_CONCURRENT_LIMIT' },
      { cls: 'account_full', code: '1520', message: 'TASK_USER_CONCURRENT_LIMIT' },
    ],
    [
      'classic 415',
      200,
      { code: 415, msg: 'TASK_INSTANCE_MAXED', data: null },
      { cls: 'account_full', code: '415', message: 'TASK_INSTANCE_MAXED' },
    ],
    ['HTTP 429, empty body', 429, '', { cls: 'account_full', code: 'HTTP_429', message: /HTTP 429 with a body that is not JSON/ }],
    // Broken key or account.
    [
      '802 APIKEY_UNAUTHORIZED',
      200,
      { taskId: '', status: 'FAILED', errorCode: 802, errorMessage: 'APIKEY_UNAUTHORIZED' },
      { cls: 'account_broken', code: '802', message: 'APIKEY_UNAUTHORIZED' },
    ],
    [
      'classic 1002',
      200,
      { code: 1002, msg: 'invalid api key', data: null },
      { cls: 'account_broken', code: '1002', message: 'invalid api key' },
    ],
    ['HTTP 401, JSON without a code', 401, { error: 'unauthorized' }, { cls: 'account_broken', code: 'HTTP_401', message: 'HTTP 401' }],
    // Bad request.
    [
      '301 PARAMS_INVALID',
      200,
      { taskId: '', errorCode: '301', errorMessage: 'PARAMS_INVALID' },
      { cls: 'bad_request', code: '301', message: 'PARAMS_INVALID' },
    ],
    ['803 beside no message', 200, { taskId: '', errorCode: '803', errorMessage: '' }, { cls: 'bad_request', code: '803', message: '803' }],
    [
      'HTTP 404 page',
      404,
      '<!DOCTYPE html><html><body>Not Found</body></html>',
      { cls: 'bad_request', code: 'HTTP_404', message: 'HTTP 404 with an HTML page instead of JSON' },
    ],
    // Task failed (a classic outputs answer), task gone (all three codes).
    [
      'classic 805',
      200,
      { code: 805, msg: 'APIKEY_TASK_FAILED', data: { failedReason: { node_name: 'KSampler' } } },
      { cls: 'task_failed', code: '805', message: 'APIKEY_TASK_FAILED' },
    ],
    [
      '807 beside a taskId but no state',
      200,
      { taskId: '1', status: '', errorCode: '807', errorMessage: 'APIKEY_TASK_NOT_FOUND' },
      { cls: 'task_gone', code: '807', message: 'APIKEY_TASK_NOT_FOUND' },
    ],
    [
      '423',
      200,
      { taskId: '', errorCode: 423, errorMessage: 'TASK_NOT_FOUNED' },
      { cls: 'task_gone', code: '423', message: 'TASK_NOT_FOUNED' },
    ],
    [
      'classic 1004',
      200,
      { code: 1004, msg: 'task does not exist or expired', data: null },
      { cls: 'task_gone', code: '1004', message: 'task does not exist or expired' },
    ],
    // Transient.
    ['1012', 200, { taskId: '', errorCode: '1012', errorMessage: 'busy' }, { cls: 'transient', code: '1012', message: 'busy' }],
    [
      'HTTP 500 with a JSON code',
      500,
      { code: 500, msg: 'Internal Server Error' },
      { cls: 'transient', code: '500', message: 'Internal Server Error' },
    ],
    ['HTTP 503, code 0', 503, { code: 0, msg: 'success' }, { cls: 'transient', code: 'HTTP_503', message: 'success' }],
    ['HTTP 408', 408, '', { cls: 'transient', code: 'HTTP_408', message: /HTTP 408/ }],
    // HTML: a proxy's page instead of JSON.
    ['nginx 502 page', 502, nginx502, { cls: 'transient', code: 'HTTP_502', message: 'HTTP 502 with an HTML page instead of JSON' }],
    [
      'an HTML page with HTTP 200',
      200,
      '  <html><body>maintenance</body></html>',
      { cls: 'transient', code: 'NOT_JSON', message: 'HTTP 200 with an HTML page instead of JSON' },
    ],
    [
      'sample 8 (truncated)',
      200,
      captured.sample8ClassicCreateAnswerTruncated,
      { cls: 'transient', code: 'NOT_JSON', message: 'HTTP 200 with a body that is not JSON' },
    ],
    // Unknown: a code nobody documented.
    [
      'an undocumented code',
      200,
      { taskId: '', errorCode: 'BRAND_NEW_ERROR', errorMessage: 'something new' },
      { cls: 'transient', code: 'BRAND_NEW_ERROR', message: 'something new' },
    ],
    [
      'an undocumented number',
      200,
      { code: 4242, message: 'v2 envelopes say message' },
      { cls: 'transient', code: '4242', message: 'v2 envelopes say message' },
    ],
  ]
  for (const [name, status, body, expected] of cases) {
    const read = readTaskAnswer(answer(status, body))
    t.match(read, { ok: false, kind: 'answer', httpStatus: status, ...expected }, name)
  }
})

t.test('readTaskAnswer: JSON that is no task and no error is left to the caller (it has no taskId)', async (t) => {
  t.same(readTaskAnswer(answer(200, {})), { ok: true, task: {}, taskId: '' }, '{} at 200')
  t.same(
    readTaskAnswer(answer(200, { taskId: null, status: 'RUNNING' })),
    { ok: true, task: { taskId: null, status: 'RUNNING' }, taskId: '' },
    'taskId null reads as empty'
  )
  t.match(
    readTaskAnswer(answer(302, {})),
    { ok: false, cls: 'transient', code: 'MALFORMED_ANSWER' },
    'outside 2xx it is an error, whatever the JSON'
  )
})

t.test('classifyAnswer: what the classic endpoints and uploads use', async (t) => {
  t.match(
    classifyAnswer(answer(200, { code: 807, msg: 'APIKEY_TASK_NOT_FOUND', data: null })),
    { cls: 'task_gone', code: '807' },
    'cancel of a task RunningHub forgot'
  )
  t.match(
    classifyAnswer(answer(200, { code: 0, msg: 'success', data: {} })),
    { cls: 'transient', code: 'MALFORMED_ANSWER', message: 'success' },
    'code 0 but not the data asked for: malformed, transient'
  )
  t.match(
    classifyAnswer(answer(200, { errorCode: '', code: 812, msg: 'CORPAPIKEY_INSUFFICIENT_FUNDS' })),
    { cls: 'account_broken', code: '812' },
    'an empty errorCode falls back to code'
  )
  t.match(
    classifyAnswer(answer(200, '')),
    { cls: 'transient', code: 'NOT_JSON', message: 'HTTP 200 with a body that is not JSON' },
    'an empty body'
  )
  t.match(classifyAnswer(answer(200, {})), { cls: 'transient', code: 'MALFORMED_ANSWER', message: 'unexpected answer' }, 'an empty object')
})

t.test("isMachineFailure: RunningHub's machine, not the workflow", async (t) => {
  t.ok(
    isMachineFailure({ node_name: 'LoadImage', exception_type: 'OSError', exception_message: '[Errno 116] Stale file handle' }),
    'a stale mount in LoadImage'
  )
  t.ok(
    isMachineFailure({
      node_name: 'LoadVideo',
      exception_type: 'FileNotFoundError',
      exception_message: 'No such file or directory: /data/input/x.mp4',
    }),
    'a missing file in LoadVideo'
  )
  t.ok(
    isMachineFailure({ class_type: 'LoadImage', exception_type: 'OSError', exception_message: 'cannot identify image file' }),
    'the loader named by class_type'
  )
  t.ok(
    isMachineFailure({ traceback: 'File "nodes.py", in LoadImage\nOSError: [Errno 5] Input/output error' }),
    'both found in the traceback'
  )
  t.ok(isMachineFailure(null, 'Stale file handle'), 'a stale mount in errorMessage alone')
  t.ok(
    isMachineFailure({ node_name: 'KSampler', exception_message: 'OSError: [Errno 116] Stale file handle' }),
    'a stale mount in any node'
  )
  t.notOk(
    isMachineFailure({ node_name: 'KSampler', exception_type: 'OutOfMemoryError', exception_message: 'CUDA out of memory' }),
    "out of memory is the workflow's"
  )
  t.notOk(
    isMachineFailure({ node_name: 'SaveImage', exception_type: 'OSError', exception_message: 'disk quota exceeded' }),
    "OSError outside the loaders is the workflow's"
  )
  t.notOk(
    isMachineFailure({ node_name: 'LoadImage', exception_type: 'ValueError', exception_message: 'bad mode' }),
    "a loader failing on its input is the workflow's"
  )
  t.notOk(isMachineFailure({}), '{} (success)')
  t.notOk(isMachineFailure(undefined, null), 'nothing at all')
  t.notOk(isMachineFailure({ node_name: 42, exception_type: ['OSError'] } as unknown as Record<string, unknown>), 'non-strings are ignored')
})
