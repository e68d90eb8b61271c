// From a row in a job table to a finished RunningHub task, over real HTTP:
// the right app, the right nodeInfoList, the right account's key.
import t from 'tap'
import { insertJob, markUpload, type JobTable } from './helpers/jobs.ts'
import { startSystem, tasksPerJob, testKeys } from './helpers/system.ts'
import { fingerprint } from '../simulator/index.ts'

t.test('jobs on all four tables run with the right app and nodeInfoList, on the account that claimed them', async (t) => {
  const sys = await startSystem(t, { slots: [3, 3] })
  const { sql } = sys.db
  const file = (name: string) => `${sys.files.url}/inputs/${name}`
  const ids: Record<string, string> = {}
  ids.pro = await insertJob(sql, 'upscaler_jobs', {
    extra: { input_url: file('a.png'), detail_denoise: 0.3, prompt: 'sharper', version: 'pro' },
  })
  ids.standard = await insertJob(sql, 'upscaler_jobs', { extra: { input_url: file('b.png'), version: 'standard' } })
  ids.longe = await insertJob(sql, 'upscaler_jobs', { extra: { input_url: null, input_file_name: 'already-there.png', version: 'longe' } })
  ids.pose = await insertJob(sql, 'pose_changer_jobs', {
    extra: { person_image_url: file('person.png'), reference_image_url: file('pose.png') },
  })
  ids.veste = await insertJob(sql, 'veste_ai_jobs', { extra: { person_image_url: file('p2.png'), clothing_image_url: file('shirt.png') } })
  ids.video = await insertJob(sql, 'video_upscaler_jobs', { extra: { video_url: file('clip.mp4') } })

  await sys.waitFor('all six jobs completed', async () => {
    const [row] = await sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`
    return row!.n === 6
  })

  const byTask = new Map(sys.sim.ledger.submissions.filter((s) => s.taskId).map((s) => [s.taskId!, s]))
  const expectations: Array<[string, JobTable, string, Array<[string, string, RegExp | string | number]>]> = [
    // URL inputs are passed through (the registry marks none for upload): the fieldValue is the URL.
    [
      'pro',
      'upscaler_jobs',
      '2015865378030755841',
      [
        ['26', 'image', file('a.png')],
        ['25', 'value', 0.3],
        ['128', 'text', 'sharper'],
      ],
    ],
    [
      'standard',
      'upscaler_jobs',
      '2017030861371219969',
      [
        ['26', 'image', file('b.png')],
        ['25', 'value', 0.15],
      ],
    ],
    [
      'longe',
      'upscaler_jobs',
      '2017343414227963905',
      [
        ['26', 'image', 'already-there.png'],
        ['25', 'value', 0.15],
      ],
    ],
    [
      'pose',
      'pose_changer_jobs',
      '2018451429635133442',
      [
        ['27', 'image', file('person.png')],
        ['60', 'image', file('pose.png')],
      ],
    ],
    [
      'veste',
      'veste_ai_jobs',
      '2018755100210106369',
      [
        ['41', 'image', file('p2.png')],
        ['43', 'image', file('shirt.png')],
      ],
    ],
    ['video', 'video_upscaler_jobs', '2018810750139109378', [['3', 'video', file('clip.mp4')]]],
  ]
  for (const [name, table, app, nodes] of expectations) {
    const [job] = await sql`select * from ${sql(table)} where id = ${ids[name]!}`
    const submission = byTask.get(job!.task_id)
    t.ok(submission, `${name}: RunningHub has its task ${job!.task_id}`)
    t.equal(submission!.webappId, app, `${name}: app ${app}`)
    const list = submission!.nodeInfoList as Array<{ nodeId: string; fieldName: string; fieldValue: unknown }>
    t.equal(list.length, nodes.length, `${name}: ${nodes.length} nodeInfoList entries (an unset optional prompt is left out)`)
    for (const [nodeId, fieldName, value] of nodes) {
      const entry = list.find((e) => e.nodeId === nodeId && e.fieldName === fieldName)
      t.ok(entry, `${name}: node ${nodeId} ${fieldName}`)
      if (value instanceof RegExp) t.match(String(entry?.fieldValue), value)
      else t.equal(entry?.fieldValue, value)
    }
    const key = testKeys[job!.api_account === 'primary' ? 0 : 1]!
    t.equal(submission!.apiKey, fingerprint(key), `${name}: submitted with ${job!.api_account}'s key`)
    t.match(job, { status: 'completed', attempts: 1, output_url: /^https?:\/\//, rh_usage: { thirdPartyConsumeMoney: /^\d/ } })
    t.match(
      submission!.webhookUrl,
      new RegExp(`^${sys.baseUrl}/webhooks/runninghub/${table}/${ids[name]}/1/`),
      `${name}: webhook URL carries the job reference`
    )
  }
  t.ok(
    [...tasksPerJob(sys.sim).values()].every((n) => n === 1),
    'one task per job'
  )
  const [events] = await sql`select count(*)::int as n from rhpool.job_events where status = 'completed'`
  t.equal(events!.n, 6, 'one terminal event per job')
  t.same(sys.files.requests, [], 'rhpool downloaded nothing: RunningHub fetches the URLs')
})

t.test(
  'an https URL input is submitted as the fieldValue itself and nothing is downloaded; a field marked upload is fetched and uploaded',
  async (t) => {
    const sys = await startSystem(t, { slots: [3] })
    const { sql } = sys.db
    const url = 'https://cdn.example.com/signed/clip.mp4?X-Amz-Signature=abc'
    const passed = await insertJob(sql, 'video_upscaler_jobs', { extra: { video_url: url } })
    const bad = await insertJob(sql, 'pose_changer_jobs', { extra: { person_image_url: 'ftp://example.com/a.png' } })
    await sys.waitFor('the URL job completed and the bad one failed', async () => {
      const rows = await sql`select id, status from rhpool.jobs where status in ('completed', 'failed')`
      return rows.length === 2
    })
    const [job] = await sql`select status, task_id, attempts from video_upscaler_jobs where id = ${passed}`
    t.match(job, { status: 'completed', attempts: 1 })
    const submission = sys.sim.ledger.submissions.find((s) => s.taskId === job!.task_id)
    t.same(submission?.nodeInfoList, [{ nodeId: '3', fieldName: 'video', fieldValue: url }], 'fieldValue is the URL, exactly')
    const [refused] = await sql`select status, error_code, error_message from pose_changer_jobs where id = ${bad}`
    t.match(refused, {
      status: 'failed',
      error_code: 'INVALID_INPUT_URL',
      error_message: /person_image_url must be an http\(s\) URL, got ftp:/,
    })

    await t.rejects(
      sql`update rhpool.tools set node_map = jsonb_set(node_map, '{0,upload}', '"true"') where job_table = 'video_upscaler_jobs'`,
      /tools_node_map_upload_is_boolean/,
      'the registry takes the upload flag as a boolean only (a string would silently pass through)'
    )
    await markUpload(sql, 'video_upscaler_jobs')
    const uploaded = await insertJob(sql, 'video_upscaler_jobs', { extra: { video_url: `${sys.files.url}/in/clip.mp4` } })
    await sys.waitFor(
      'the upload job completed',
      async () => (await sql`select 1 from video_upscaler_jobs where id = ${uploaded} and status = 'completed'`).length > 0
    )
    const [done] = await sql`select task_id from video_upscaler_jobs where id = ${uploaded}`
    const list = sys.sim.ledger.submissions.find((s) => s.taskId === done!.task_id)?.nodeInfoList as Array<{ fieldValue: unknown }>
    t.match(String(list?.[0]?.fieldValue), /^openapi\//, "a field marked upload gets RunningHub's file name")
    t.same(sys.files.requests, ['/in/clip.mp4'], 'only the field marked upload was downloaded')
    t.ok(
      sys.logs.some((line) => line.includes('"level":40') && line.includes('RHPOOL_ALLOW_PRIVATE_INPUTS=true')),
      'the allowance the file server needs is announced as a warning, not silent'
    )
  }
)

t.test('one key behaves exactly like the single-account system', async (t) => {
  const sys = await startSystem(t, { slots: [3], simConcurrency: 10, sim: { taskDurationMs: 300 } })
  for (let i = 0; i < 10; i++) await insertJob(sys.db.sql, 'veste_ai_jobs')
  await sys.waitFor(
    'ten jobs completed',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'completed'`)[0]!.n === 10,
    30_000
  )
  const concurrency = sys.sim.ledger.concurrency(testKeys[0]!)
  t.equal(concurrency.maxConcurrency, 3, 'never more than 3 at once at RunningHub, though it would have taken 10')
  const accounts = await sys.db.sql`select distinct api_account from rhpool.jobs`
  t.same(
    accounts.map((a) => a.api_account),
    ['primary']
  )
  const [status] = await sys.db.sql`select rhpool.pool_status() as s`
  t.match(status!.s, { totalMaxSlots: 3, accounts: [{ name: 'primary', maxSlots: 3 }] })
  t.equal((status!.s.accounts as unknown[]).length, 1)
})

t.test('adding RUNNINGHUB_API_KEY_2 doubles capacity with no code change', async (t) => {
  const sys = await startSystem(t, { slots: [3, 3], simConcurrency: 10, sim: { taskDurationMs: 600 } })
  for (let i = 0; i < 12; i++) await insertJob(sys.db.sql, 'upscaler_jobs', { extra: { input_url: null, input_file_name: 'in.png' } })
  let peak = 0
  await sys.waitFor(
    'twelve jobs completed',
    async () => {
      const [row] = await sys.db
        .sql`select count(*) filter (where status = 'running')::int as running, count(*) filter (where status = 'completed')::int as done from rhpool.jobs`
      peak = Math.max(peak, row!.running)
      return row!.done === 12
    },
    30_000
  )
  t.equal(peak, 6, 'six at once: 3 slots × 2 accounts')
  t.equal(sys.sim.ledger.concurrency(testKeys[0]!).maxConcurrency, 3)
  t.equal(sys.sim.ledger.concurrency(testKeys[1]!).maxConcurrency, 3)
})

// A dispatcher limited by its own RHPOOL_MAX_CONCURRENT_SUBMISSIONS claims again when one of its
// submissions ends: nothing in the database announces that (the account's slot is still taken,
// by the task now running), so the dispatcher wakes itself. Only then: a submission ending while
// the accounts' slots were the limit wakes nobody (a claim then could not succeed; the
// transition that frees a slot announces it). The poll is ten minutes here, so only a wake-up moves.
t.test('a dispatcher held back by its own submission limit claims again as each submission ends', async (t) => {
  const sys = await startSystem(t, {
    slots: [3],
    sim: { taskDurationMs: 60_000 },
    env: { RHPOOL_MAX_CONCURRENT_SUBMISSIONS: '1', RHPOOL_POLL_INTERVAL_MS: '600000' },
  })
  for (let i = 0; i < 3; i++) await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor(
    'three tasks running at once, submitted one at a time',
    async () => (await sys.db.sql`select count(*)::int as n from rhpool.jobs where status = 'running'`)[0]!.n === 3,
    30_000
  )
  t.equal(sys.sim.ledger.submissions.filter((s) => s.taskId).length, 3, 'three tasks at RunningHub')
})

// A full pool with a backlog: every job queued behind it announces itself ('queued'), and a claim
// for each would find nothing. After one empty claim the dispatcher knows that no slot of its
// accounts is free (rhpool.slot_free_among) and waits for a slot to be given back instead.
t.test('a dispatcher whose accounts are full does not claim for every job queued behind them', async (t) => {
  const sys = await startSystem(t, { slots: [1], sim: { taskDurationMs: 600_000 }, env: { RHPOOL_POLL_INTERVAL_MS: '600000' } })
  const emptyClaims = async () => {
    const text = await (await fetch(`${sys.adminUrl}/metrics`)).text()
    return Number(/^rhpool_claim_calls_total\{result="empty"\} (\d+)$/m.exec(text)?.[1] ?? 0)
  }
  const running = async () => (await sys.db.sql`select id from rhpool.jobs where status = 'running'`).map((r) => r.id as string)
  const first = await insertJob(sys.db.sql, 'upscaler_jobs')
  await sys.waitFor('the first job running', async () => (await running()).includes(first))
  const before = await emptyClaims()
  for (let i = 0; i < 40; i++) await insertJob(sys.db.sql, 'upscaler_jobs')
  // The slot given back: announced after every one of those inserts ('slot').
  await sys.db.sql`select rhpool.cancel_job('upscaler_jobs', ${first})`
  const [next] = await sys.waitFor('the next job running on the slot the cancel gave back', async () => {
    const now = await running()
    return now.length === 1 && now[0] !== first ? now : null
  })
  t.ok(next, 'the backlog moved as soon as the slot was free')
  const empty = (await emptyClaims()) - before
  // One to learn the pool is full, and one more if an insert's wake-up came while it was asking;
  // a third leaves room for another kind of wake-up meanwhile (each claims, as it should).
  t.ok(empty <= 3, `40 jobs queued behind a full pool: ${empty} claims that found nothing (not one per job)`)
})
