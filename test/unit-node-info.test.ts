// src/tools/node-info.ts on its own: no database, no HTTP. The tool definitions are the ones the
// schema ships in rhpool.tools (db/migrations/committed/000001-core-schema.sql), written out here:
// which app a job runs, and how its columns become nodeInfoList entries — file inputs (URL or
// RunningHub file name, pass-through or upload), plain columns, constants, optional fields — and
// the JobInputError each unusable job gets, naming its field.
import t, { type Test } from 'tap'
import { buildNodeInfoList, chooseApp, JobInputError, type ToolDefinition } from '../src/tools/node-info.ts'

const upscaler: ToolDefinition = {
  tool: 'upscaler',
  app: {
    column: 'version',
    default: 'pro',
    apps: { pro: '2015865378030755841', standard: '2017030861371219969', longe: '2017343414227963905' },
  },
  node_map: [
    { nodeId: '26', fieldName: 'image', file: ['input_url', 'input_file_name'] },
    { nodeId: '25', fieldName: 'value', column: 'detail_denoise' },
    { nodeId: '128', fieldName: 'text', column: 'prompt', optional: true },
  ],
}
const poseChanger: ToolDefinition = {
  tool: 'pose_changer',
  app: { apps: { default: '2018451429635133442' } },
  node_map: [
    { nodeId: '27', fieldName: 'image', file: ['person_image_url', 'person_file_name'] },
    { nodeId: '60', fieldName: 'image', file: ['reference_image_url', 'reference_file_name'] },
  ],
}

/** resolveFile for tools that upload nothing: any call is a failure of the test. */
const noUpload = (t: Test) => async (url: string) => {
  t.fail(`resolveFile called for ${url}`)
  return 'unexpected'
}

/** The JobInputError `work` rejects or throws with (fails the test if it succeeds or throws something else). */
async function inputError(t: Test, work: () => unknown): Promise<JobInputError | null> {
  try {
    await work()
  } catch (error) {
    t.ok(error instanceof JobInputError, `a JobInputError (${(error as Error).name}: ${(error as Error).message})`)
    return error as JobInputError
  }
  t.fail('no error')
  return null
}

t.test('chooseApp: the column picks the app, its default when null, one app for a tool without a column', async (t) => {
  t.equal(chooseApp(upscaler, { version: 'standard' }), '2017030861371219969')
  t.equal(chooseApp(upscaler, { version: 'longe' }), '2017343414227963905')
  t.equal(chooseApp(upscaler, { version: null }), '2015865378030755841', 'null: the default (pro)')
  t.equal(chooseApp(upscaler, {}), '2015865378030755841', 'absent: the default')
  t.equal(chooseApp(poseChanger, { version: 'standard' }), '2018451429635133442', 'no column: the one app, whatever the job says')
})

t.test('chooseApp: overrides, per choice and per tool', async (t) => {
  t.equal(chooseApp(upscaler, { version: 'standard' }, { 'upscaler:standard': '999' }), '999', 'tool:choice')
  t.equal(
    chooseApp(upscaler, { version: 'pro' }, { 'upscaler:standard': '999' }),
    '2015865378030755841',
    'another choice is not overridden'
  )
  t.equal(chooseApp(poseChanger, {}, { pose_changer: '888' }), '888', 'the tool name overrides a single-app tool')
  t.equal(chooseApp(upscaler, { version: 'pro' }, { upscaler: '888' }), '2015865378030755841', 'but not a choice made by a column')
})

t.test('chooseApp: an unknown choice is a JobInputError naming the column and the known choices', async (t) => {
  const error = await inputError(t, () => chooseApp(upscaler, { version: 'ultra' }))
  t.equal(error?.field, 'version')
  t.equal(error?.code, 'INVALID_INPUT')
  t.equal(error?.name, 'JobInputError')
  t.equal(error?.message, 'upscaler: no RunningHub app for version = "ultra" (known: pro, standard, longe)')
  const noDefault: ToolDefinition = { tool: 'x', app: { column: 'mode', apps: { fast: '1' } }, node_map: [] }
  t.match(
    (await inputError(t, () => chooseApp(noDefault, { mode: null })))?.message,
    /no RunningHub app for mode = "default"/,
    'null without a default'
  )
  const noApps: ToolDefinition = { tool: 'y', app: { apps: {} }, node_map: [] }
  const bare = await inputError(t, () => chooseApp(noApps, {}))
  t.equal(bare?.field, 'app', 'no column: the field is "app"')
  t.match(bare?.message, /^y: no RunningHub app for this tool = "default"/)
})

t.test('buildNodeInfoList: a file entry passes the URL through (it wins over a file name), else the file name', async (t) => {
  const url = 'https://cdn.example.com/in/photo.png?sig=abc'
  t.same(
    await buildNodeInfoList(
      upscaler,
      { input_url: url, input_file_name: 'api/old.png', detail_denoise: 0.35, prompt: 'sharper' },
      noUpload(t)
    ),
    [
      { nodeId: '26', fieldName: 'image', fieldValue: url },
      { nodeId: '25', fieldName: 'value', fieldValue: 0.35 },
      { nodeId: '128', fieldName: 'text', fieldValue: 'sharper' },
    ],
    'URL, number kept a number, text; in node_map order'
  )
  t.same(
    await buildNodeInfoList(upscaler, { input_url: null, input_file_name: ' api/9d77b8.png ', detail_denoise: '0.5' }, noUpload(t)),
    [
      { nodeId: '26', fieldName: 'image', fieldValue: 'api/9d77b8.png' },
      { nodeId: '25', fieldName: 'value', fieldValue: '0.5' },
    ],
    'no URL: the file name, trimmed; the optional prompt, absent, left out'
  )
  t.same(
    (await buildNodeInfoList(upscaler, { input_url: '   ', input_file_name: 'openapi/a.png', detail_denoise: 1 }, noUpload(t)))[0],
    { nodeId: '26', fieldName: 'image', fieldValue: 'openapi/a.png' },
    'a blank URL counts as none'
  )
  t.same(
    (await buildNodeInfoList(upscaler, { input_url: ` ${url}\n`, detail_denoise: 1 }, noUpload(t)))[0]?.fieldValue,
    url,
    'the URL trimmed'
  )
  t.same(
    await buildNodeInfoList(poseChanger, { person_image_url: 'http://a.example/p.jpg', reference_file_name: 'api/r.png' }, noUpload(t)),
    [
      { nodeId: '27', fieldName: 'image', fieldValue: 'http://a.example/p.jpg' },
      { nodeId: '60', fieldName: 'image', fieldValue: 'api/r.png' },
    ],
    'two file inputs, one by URL and one by name'
  )
})

t.test('buildNodeInfoList: optional entries are left out when null, undefined or empty; others are kept', async (t) => {
  const base = { input_file_name: 'api/x.png', detail_denoise: 0 }
  for (const prompt of [null, undefined, '']) {
    t.same(
      (await buildNodeInfoList(upscaler, { ...base, prompt }, noUpload(t))).map((e) => e.nodeId),
      ['26', '25'],
      `prompt ${JSON.stringify(prompt)}: left out`
    )
  }
  t.same(
    await buildNodeInfoList(upscaler, { ...base, prompt: ' ' }, noUpload(t)).then((l) => l[2]),
    { nodeId: '128', fieldName: 'text', fieldValue: ' ' },
    'a space is a value (column text is not trimmed)'
  )
  t.same(
    (await buildNodeInfoList(upscaler, base, noUpload(t)))[1],
    { nodeId: '25', fieldName: 'value', fieldValue: 0 },
    '0 is a value, not empty'
  )
  const flags: ToolDefinition = { tool: 'f', app: { apps: { default: '1' } }, node_map: [{ nodeId: '1', fieldName: 'on', column: 'flag' }] }
  t.same(
    await buildNodeInfoList(flags, { flag: false }, noUpload(t)),
    [{ nodeId: '1', fieldName: 'on', fieldValue: false }],
    'false is a value, kept a boolean'
  )
})

t.test('buildNodeInfoList: constants, and uploads through resolveFile with the field named', async (t) => {
  const tool: ToolDefinition = {
    tool: 'video_upscaler',
    app: { apps: { default: '2018810750139109378' } },
    node_map: [
      { nodeId: '3', fieldName: 'video', file: ['video_url', 'input_file_name'], upload: true },
      { nodeId: '7', fieldName: 'scale', value: 2 },
      { nodeId: '8', fieldName: 'mode', value: 'fast' },
    ],
  }
  const calls: Array<[string, string]> = []
  const resolve = async (url: string, field: string) => {
    calls.push([url, field])
    return 'openapi/uploaded.mp4'
  }
  t.same(
    await buildNodeInfoList(tool, { video_url: ' https://cdn.example.com/v.mp4 ' }, resolve),
    [
      { nodeId: '3', fieldName: 'video', fieldValue: 'openapi/uploaded.mp4' },
      { nodeId: '7', fieldName: 'scale', fieldValue: 2 },
      { nodeId: '8', fieldName: 'mode', fieldValue: 'fast' },
    ],
    "the upload's RunningHub file name is the value; constants as given"
  )
  t.same(calls, [['https://cdn.example.com/v.mp4', 'video_url']], 'resolveFile: the trimmed URL and its column')
  calls.length = 0
  t.same(
    (await buildNodeInfoList(tool, { input_file_name: 'openapi/already.mp4' }, resolve))[0]?.fieldValue,
    'openapi/already.mp4',
    'a file name needs no upload'
  )
  t.same(calls, [], 'resolveFile not called')
  await t.rejects(
    buildNodeInfoList(tool, { video_url: 'https://cdn.example.com/v.mp4' }, async () => {
      throw new Error('download refused')
    }),
    { message: 'download refused' },
    "resolveFile's failure is the caller's to classify"
  )
})

t.test('buildNodeInfoList: an unusable job is a JobInputError naming the field', async (t) => {
  const missingFile = await inputError(t, () =>
    buildNodeInfoList(upscaler, { input_url: null, input_file_name: '  ', detail_denoise: 1 }, noUpload(t))
  )
  t.equal(missingFile?.field, 'input_url or input_file_name')
  t.equal(missingFile?.code, 'INVALID_INPUT')
  t.equal(missingFile?.message, 'upscaler: input_url or input_file_name is required for node 26 (image) but is empty')

  const missingColumn = await inputError(t, () =>
    buildNodeInfoList(upscaler, { input_file_name: 'api/x.png', detail_denoise: null }, noUpload(t))
  )
  t.equal(missingColumn?.field, 'detail_denoise')
  t.equal(missingColumn?.message, 'upscaler: detail_denoise is required for node 25 (value) but is empty')
  t.equal(
    (await inputError(t, () => buildNodeInfoList(upscaler, { input_file_name: 'api/x.png', detail_denoise: '' }, noUpload(t))))?.field,
    'detail_denoise',
    'an empty string is empty'
  )

  const notUrl = await inputError(t, () => buildNodeInfoList(upscaler, { input_url: 'photo.png', detail_denoise: 1 }, noUpload(t)))
  t.equal(notUrl?.field, 'input_url')
  t.equal(notUrl?.code, 'INVALID_INPUT_URL')
  t.equal(notUrl?.message, 'input_url is not a URL: "photo.png"')

  for (const url of ['ftp://cdn.example.com/p.png', 'file:///etc/passwd', 'javascript:alert(1)', 'data:image/png;base64,AAAA']) {
    const error = await inputError(t, () =>
      buildNodeInfoList(poseChanger, { person_image_url: url, reference_file_name: 'api/r.png' }, noUpload(t))
    )
    t.equal(error?.field, 'person_image_url', url)
    t.equal(error?.code, 'INVALID_INPUT_URL')
    t.match(error?.message, /^person_image_url must be an http\(s\) URL, got [a-z]+:$/)
  }
  const long = await inputError(t, () => buildNodeInfoList(upscaler, { input_url: 'x'.repeat(5000), detail_denoise: 1 }, noUpload(t)))
  t.ok(long && long.message.length < 260, `a long bad value is cut in the message (${long?.message.length} characters)`)

  const second = await inputError(t, () => buildNodeInfoList(poseChanger, { person_file_name: 'api/p.png' }, noUpload(t)))
  t.equal(second?.field, 'reference_image_url or reference_file_name', 'the second file input, named')
  t.match(second?.message, /node 60 \(image\)/)
})
