// The status page, as a person sees it: headless Chromium opens GET /dashboard
// on a live pool and the test checks the slot boxes, the cooldown reason, the
// queue per tool, recent jobs and cost against the database, then changes the
// database and waits for the page to follow without a reload. The screenshot is
// docs/dashboard.png.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { projectRoot } from '../src/db/migrate.ts'
import { webhookPath } from '../src/webhook/job-reference.ts'
import { insertJob, type JobTable } from './helpers/jobs.ts'
import { startSystem, testKeys, testSecret } from './helpers/system.ts'

type Sys = Awaited<ReturnType<typeof startSystem>>

const chromiumPath = process.env.RHPOOL_CHROMIUM ?? '/usr/bin/chromium'
const screenshotPath = join(projectRoot, 'docs', 'dashboard.png')

interface RunningJob {
  job_table: string
  id: string
  attempts: number
  task_id: string
  api_account: string
}

async function runningOn(sys: Sys, account: string): Promise<RunningJob[]> {
  return (await sys.db.sql`select job_table, id, attempts, task_id, api_account from rhpool.jobs
                           where status = 'running' and api_account = ${account} order by created_at, id`) as unknown as RunningJob[]
}

/** Finishes a running job the way RunningHub does: a TASK_END callback to its signed webhook URL. */
async function finish(sys: Sys, job: RunningJob, outcome: { cost: string } | { errorCode: string }): Promise<void> {
  const eventData =
    'cost' in outcome
      ? {
          taskId: job.task_id,
          status: 'SUCCESS',
          errorCode: '',
          errorMessage: '',
          results: [{ url: 'https://cdn.example/out.png', nodeId: '9', outputType: 'png', text: null }],
          usage: { consumeMoney: outcome.cost, consumeCoins: '0', taskCostTime: '30', thirdPartyConsumeMoney: '0' },
        }
      : { taskId: job.task_id, status: 'FAILED', errorCode: outcome.errorCode, errorMessage: 'workflow failed' }
  const path = webhookPath(testSecret, { jobTable: job.job_table, jobId: job.id, attempt: job.attempts })
  const response = await fetch(sys.baseUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ event: 'TASK_END', taskId: job.task_id, eventData }),
  })
  if (response.status !== 200) throw new Error(`webhook answered ${response.status}: ${await response.text()}`)
}

const count = async (sys: Sys, query: Promise<Array<Record<string, unknown>>>): Promise<number> => Number((await query)[0]!.n)

/** What the page shows for one account. */
async function shownAccount(page: Page, name: string) {
  const card = page.locator(`.account[data-account="${name}"]`)
  return {
    filled: await card.locator('.slot.filled').count(),
    empty: await card.locator('.slot.empty').count(),
    cost: await card.locator('.cost').innerText(),
  }
}

/** Queue counts per tool as shown. */
async function shownQueue(page: Page): Promise<Record<string, number>> {
  // One task of the page: a poll between finding the rows and reading them could detach them.
  return await page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('#queue tbody tr')].map((r) => [
        (r as HTMLElement).dataset.tool!,
        Number(r.querySelector('td.queued')!.textContent),
      ])
    )
  )
}

async function dbQueue(sys: Sys): Promise<Record<string, number>> {
  const rows = await sys.db.sql`select tool, queued from rhpool.queue_status`
  return Object.fromEntries(rows.map((r) => [r.tool as string, r.queued as number]))
}

t.test('the dashboard shows the pool as it is and follows it live', async (t) => {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `Chromium is needed for the dashboard test and is not at ${chromiumPath}: ` +
        'install it (`apt-get install chromium`, or `RHPOOL_WITH_CHROMIUM=1 bash scripts/install-system-deps`), ' +
        'or point RHPOOL_CHROMIUM at a Chromium binary'
    )
  }

  // Tasks run for minutes at the simulator, so jobs stay running until the
  // test finishes them with a callback; the simulator's own limit is above
  // rhpool's so a finished job's slot can be reused at once.
  // The test plays RunningHub's callbacks itself (the simulator's tasks never end in time), so
  // they must be trusted as sent: with confirmation (the default) RunningHub would say RUNNING.
  const sys = await startSystem(t, {
    slots: [3, 3],
    simConcurrency: 10,
    sim: { taskDurationMs: 600_000 },
    env: { RHPOOL_CONFIRM_CALLBACKS: 'false' },
  })
  const { sql } = sys.db
  // Long cooldowns, so the page has time to show one.
  await sql`insert into rhpool.settings (key, value) values ('cooldown_base_seconds', '180')
            on conflict (key) do update set value = excluded.value`

  // Seven jobs: primary takes three (fill-first), account_2 three, one waits.
  const first: JobTable[] = [
    'upscaler_jobs',
    'pose_changer_jobs',
    'veste_ai_jobs',
    'upscaler_jobs',
    'video_upscaler_jobs',
    'veste_ai_jobs',
    'upscaler_jobs',
  ]
  // Backdated, so ages on the page (and the screenshot) look like a pool at work.
  const ago = (seconds: number) => new Date(Date.now() - seconds * 1000)
  for (const [i, table] of first.entries()) await insertJob(sql, table, { createdAt: ago(720 - i * 50) })
  await sys.waitFor(
    'six jobs running',
    async () => (await count(sys, sql`select count(*) as n from rhpool.jobs where status = 'running'`)) === 6
  )

  // One finishes on primary; the waiting job takes its slot.
  const [primaryDone] = await runningOn(sys, 'primary')
  await finish(sys, primaryDone!, { cost: '0.41' })
  await sys.waitFor('primary full again', async () => (await runningOn(sys, 'primary')).length === 3)

  // On account_2 one completes and one fails; then RunningHub says it is full.
  const [secondDone, secondFailed] = await runningOn(sys, 'account_2')
  await finish(sys, secondDone!, { cost: '0.62' })
  await finish(sys, secondFailed!, { errorCode: '805' })
  await sql`select rhpool.cool_down_account('account_2', '421: TASK_QUEUE_MAXED')`

  // Work that has to wait: primary is full and account_2 is cooling down.
  const waiting: JobTable[] = ['upscaler_jobs', 'upscaler_jobs', 'veste_ai_jobs', 'video_upscaler_jobs']
  for (const [i, table] of waiting.entries()) await insertJob(sql, table, { createdAt: ago(95 - i * 20) })
  const [queuedState] = await sql`select count(*)::int as n from rhpool.runs where status = 'queued'`
  t.equal(queuedState!.n, 4, 'four jobs wait in the queue')

  const browser: Browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  const requests: string[] = []
  const problems: string[] = []
  page.on('request', (request) => requests.push(request.url()))
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(error.message))

  const response = await page.goto(sys.adminUrl + '/dashboard')
  t.equal(response!.status(), 200)
  t.match(response!.headers()['content-type'], /^text\/html/, 'served as text/html')
  await page.locator('.account[data-account="account_2"]').waitFor()

  // Slots: one box per slot, filled for each job in flight, as in the database.
  const accounts = await sql`select name, running, max_slots from rhpool.account_status order by position`
  t.same(
    accounts.map((a) => [a.name, a.running, a.max_slots]),
    [
      ['primary', 3, 3],
      ['account_2', 1, 3],
    ],
    'the database: primary full, account_2 one of three'
  )
  for (const a of accounts) {
    const shown = await shownAccount(page, a.name)
    t.equal(shown.filled, a.running, `${a.name}: ${a.running} filled boxes`)
    t.equal(shown.empty, a.max_slots - a.running, `${a.name}: ${a.max_slots - a.running} empty boxes`)
  }
  // Queried and measured in one task of the page: each poll replaces the cards, so boxes found
  // by one call ($$eval) can be detached by the next (no style, no size) on a busy machine.
  const colours = await page.evaluate(
    (selector) =>
      [...document.querySelectorAll(selector)].map((b) => {
        const r = b.getBoundingClientRect()
        return {
          filled: b.classList.contains('filled'),
          background: getComputedStyle(b).backgroundColor,
          visible: r.width >= 16 && r.height >= 16,
        }
      }),
    '.account[data-account="account_2"] .slot'
  )
  t.ok(
    colours.every((c) => c.visible),
    'every slot box is drawn large enough to see'
  )
  const filledColour = colours.find((c) => c.filled)!.background
  const emptyColour = colours.find((c) => !c.filled)!.background
  t.not(filledColour, emptyColour, `filled boxes (${filledColour}) look different from empty ones (${emptyColour})`)

  // The cooldown, its reason and the time left, in words a person reads.
  const cooling = page.locator('.account[data-account="account_2"] .reason')
  t.ok(await cooling.isVisible(), 'the cooldown line is visible')
  t.match(await cooling.innerText(), /^Cooling down, (2 m \d\d s|3 m 00 s) left: 421: TASK_QUEUE_MAXED$/)
  t.equal(await page.locator('.account[data-account="account_2"] .badge').innerText(), 'cooling down')
  t.equal(await page.locator('.account[data-account="primary"] .badge').innerText(), 'taking work')

  // Queue per tool, and cost per account.
  t.same(await shownQueue(page), await dbQueue(sys), 'queue counts per tool as in rhpool.queue_status')
  t.same(await shownQueue(page), { pose_changer: 0, upscaler: 2, veste_ai: 1, video_upscaler: 1 })
  t.equal((await shownAccount(page, 'primary')).cost, '0.41', 'primary: cost of its completed job')
  t.equal((await shownAccount(page, 'account_2')).cost, '0.62', 'account_2: the failed job costs nothing here')

  // Recent jobs: the failed one with its account and error code.
  const failedRow = page.locator(`#recent tr[data-job="${secondFailed!.id.slice(0, 8)}"]`)
  t.ok(await failedRow.isVisible(), 'the failed job has a visible row')
  const failedCells = await failedRow.locator('td').allInnerTexts()
  t.same(failedCells.slice(0, 4), [secondFailed!.job_table.replace(/_jobs$/, ''), secondFailed!.id.slice(0, 8), 'failed', 'account_2'])
  t.equal(failedCells[5], '805', 'its error code')
  const rowsShown = await page.locator('#recent tbody tr').count()
  t.equal(rowsShown, 11, 'all eleven jobs are recent')

  // Live: a new job and a finished one reach the page without a reload.
  const navigations: string[] = []
  page.on('framenavigated', (frame) => navigations.push(frame.url()))
  await insertJob(sql, 'pose_changer_jobs')
  const [primaryNext] = await runningOn(sys, 'primary')
  await finish(sys, primaryNext!, { cost: '0.35' })
  // The oldest queued job (an upscaler) takes primary's free slot.
  await sys.waitFor('primary full again', async () => (await runningOn(sys, 'primary')).length === 3)
  const expectedQueue = await dbQueue(sys)
  t.same(expectedQueue, { pose_changer: 1, upscaler: 1, veste_ai: 1, video_upscaler: 1 })
  await page.waitForFunction(
    (expected) => {
      const rows = [...document.querySelectorAll<HTMLElement>('#queue tbody tr')]
      return rows.length > 0 && rows.every((r) => Number(r.querySelector('td.queued')!.textContent) === expected[r.dataset.tool!])
    },
    expectedQueue,
    { timeout: 5000 }
  )
  t.pass('the queue counts follow the database')
  await page.locator(`#recent tr[data-job="${primaryNext!.id.slice(0, 8)}"][data-status="completed"]`).waitFor({ timeout: 5000 })
  t.pass('the finished job shows as completed')
  await page.waitForFunction(() => document.querySelector('.account[data-account="primary"] .cost')?.textContent === '0.76', null, {
    timeout: 5000,
  })
  t.pass("primary's cost follows: 0.41 + 0.35")
  t.equal(await page.locator('#recent tbody tr').count(), 12, 'the new job has a row')
  t.same(navigations, [], 'no reload')

  // The screenshot once the page shows the pool settled (no job between claim and running).
  await page.waitForFunction(
    () => document.querySelectorAll('#recent tr[data-status="claimed"], #recent tr[data-status="submitting"]').length === 0,
    null,
    { timeout: 5000 }
  )
  // The committed picture (docs/dashboard.png) is refreshed only on request, so a
  // test run does not leave the working tree changed.
  const picture = await page.screenshot(process.env.RHPOOL_UPDATE_SCREENSHOT === '1' ? { path: screenshotPath } : {})
  t.ok(picture.length > 10_000, `a ${picture.length}-byte screenshot of the page`)

  // Whatever the database holds is shown as text, never parsed as HTML.
  await sql`update rhpool.accounts set cooldown_reason = '<img id=injected src=x onerror="window.hacked=1">' where name = 'account_2'`
  await page.waitForFunction(
    () => document.querySelector('.account[data-account="account_2"] .reason')?.textContent?.includes('<img id=injected'),
    null,
    { timeout: 5000 }
  )
  t.equal(await page.locator('#injected').count(), 0, 'a reason with markup is shown as text')
  t.equal(await page.evaluate(() => (window as unknown as { hacked?: number }).hacked), undefined)

  // No key, no key fingerprint, in the page or its data.
  const fingerprints = (await sql`select key_fingerprint from rhpool.accounts where key_fingerprint is not null`).map(
    (r) => r.key_fingerprint as string
  )
  t.equal(fingerprints.length, 2)
  const data = await (await fetch(sys.adminUrl + '/dashboard/data')).text()
  const html = await page.content()
  for (const secret of [...testKeys, ...fingerprints, testSecret]) {
    t.notOk(data.includes(secret) || html.includes(secret), `${secret.slice(0, 6)}… is not shown`)
  }
  t.same(
    requests.filter((url) => !url.startsWith(sys.adminUrl + '/')),
    [],
    'the page loads nothing from anywhere else'
  )
  t.same(problems, [], 'no script errors and no Content-Security-Policy violations')
})

t.test('GET /dashboard/data checks its one parameter', async (t) => {
  const sys = await startSystem(t, { slots: [3] })
  await insertJob(sys.db.sql, 'upscaler_jobs', { status: 'pending' })
  const ok = await fetch(sys.adminUrl + '/dashboard/data?recent=1')
  t.equal(ok.status, 200)
  const body = (await ok.json()) as { recent: unknown[]; accounts: Array<Record<string, unknown>> }
  t.equal(body.recent.length, 1)
  t.same(Object.keys(body.accounts[0]!).sort(), [
    'available',
    'completed',
    'configuredSlots',
    'cooldownReason',
    'cooldownSecondsLeft',
    'cost',
    'disabledReason',
    'enabled',
    'keyHolders',
    'learnedLimit',
    'limitReason',
    'name',
    'remainMoney',
    'reportedLimit',
    'running',
    'slots',
    'unheldReason',
  ])
  for (const bad of ['-1', '101', 'x', '1e2']) {
    const response = await fetch(sys.adminUrl + `/dashboard/data?recent=${bad}`)
    t.equal(response.status, 400, `recent=${bad} is refused`)
  }
})
