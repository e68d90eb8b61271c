// The webhook route's throughput with duplicates mixed in, and where its CPU
// goes: rhpool's HTTP service in this process (no dispatcher), the senders in
// a child process (bench/lib/webhook-sender.ts), PostgreSQL in its own
// cluster. Each job in flight gets its TASK_END; a share of them get it again
// a little later (RunningHub resends), so that share of all deliveries are
// duplicates. Run once per callback mode the route has:
//   confirmed  rhpool's default: the route holds each callback as a claim
//              (rhpool.receive_claim) for a dispatcher to confirm with
//              RunningHub's query; that confirmation is not the route's work
//              and is not measured here;
//   trusted    the route finishes the job from the callback as sent
//              (rhpool.apply_callback): the job row, its run, its event.
// Run: npx tsx bench/webhook.ts [--deliveries 10000] [--duplicates 0.2] [--senders 32]   (--help)
import { spawn } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config/index.ts'
import { migrate } from '../src/db/migrate.ts'
import { freePort } from '../src/localdb/cluster.ts'
import { createLogger } from '../src/log.ts'
import { startService } from '../src/service.ts'
import { webhookPath } from '../src/webhook/job-reference.ts'
import { callbackEnv, callbackModes, readCommandLine, someOf, wholeNumber, type CallbackMode } from './lib/command-line.ts'
import { cpuSince, sampleCpu } from './lib/cpu-usage.ts'
import { putJobsInFlight, successCallback } from './lib/jobs-in-flight.ts'
import { summarize } from './lib/latency-stats.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { benchWebhookSecret } from './lib/rhpool-in-process.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'
import type { SenderReport } from './lib/webhook-sender.ts'

const usage = `Usage: npx tsx bench/webhook.ts [options]

  --deliveries N      callbacks sent in each mode (default 10000)
  --duplicates F      share of the deliveries that are a job's second TASK_END, 0 to 0.5 (default 0.2)
  --senders N         requests in flight at once (default 32)
  --callbacks MODES   which of the route's modes to measure, comma-separated: confirmed (rhpool's
                      default: held as claims), trusted (jobs finished as sent) (default both)
  --quick             2000 deliveries
  --help              this text`

const settings = readCommandLine({
  script: 'bench/webhook.ts',
  usage,
  options: {
    deliveries: { type: 'string', default: '10000' },
    duplicates: { type: 'string', default: '0.2' },
    senders: { type: 'string', default: '32' },
    callbacks: { type: 'string', default: 'confirmed,trusted' },
    quick: { type: 'boolean', default: false },
  },
  read: (values) => ({
    deliveries: values.quick ? 2000 : wholeNumber('deliveries', values.deliveries, 10),
    duplicates: duplicateShare(values.duplicates),
    senders: wholeNumber('senders', values.senders),
    modes: someOf('callbacks', values.callbacks, callbackModes),
  }),
})

function duplicateShare(text: string): number {
  const share = Number(text)
  if (!/^\d*\.?\d+$/.test(text.trim()) || !(share >= 0 && share <= 0.5)) {
    process.stderr.write(`bench/webhook.ts: --duplicates ${text}: a share from 0 to 0.5 (0.2 = one delivery in five is a duplicate)\n`)
    process.exit(2)
  }
  return share
}

/** A small seeded generator: the same deliveries in the same order every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

/**
 * The deliveries in sending order: every job's TASK_END, and for a share of
 * the jobs a second one placed up to 200 deliveries later, so some duplicates
 * arrive while the first is still being written and some after.
 */
function deliveryOrder(jobs: Array<{ id: string; task_id: string }>, duplicated: number): Array<{ path: string; body: string }> {
  const random = seeded(12)
  const firsts = jobs.map((job) => ({
    path: webhookPath(benchWebhookSecret, { jobTable: 'upscaler_jobs', jobId: job.id, attempt: 1 }),
    body: successCallback(job.task_id),
  }))
  const order: Array<{ path: string; body: string } | undefined> = [...firsts]
  for (let i = 0; i < duplicated; i++) {
    const at = Math.min(order.length, Math.floor(i * (jobs.length / duplicated)) + 1 + Math.floor(random() * 200))
    order.splice(at, 0, firsts[Math.floor(i * (jobs.length / duplicated))])
  }
  return order.filter((d) => d !== undefined)
}

interface ModeResult {
  mode: CallbackMode
  report: SenderReport
  serverCpu: number
  postgresCpu: number
  outcomes: Record<string, number>
}

async function measureMode(url: string, dataDir: string, mode: CallbackMode): Promise<ModeResult> {
  const duplicated = Math.round(settings.deliveries * settings.duplicates)
  const jobs = settings.deliveries - duplicated
  const port = await freePort()
  const env: Record<string, string> = {
    DATABASE_URL: url,
    RUNNINGHUB_API_KEY: 'bench-key-webhook-0003',
    // Never called: the route makes no outbound request, and there is no dispatcher.
    RUNNINGHUB_BASE_URL: 'http://127.0.0.1:9',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    WEBHOOK_SECRET: benchWebhookSecret,
    PORT: String(port),
    ADMIN_PORT: '0',
    LOG_LEVEL: 'silent',
    RHPOOL_DISPATCHER: 'false',
    ...callbackEnv(mode),
  }
  const service = await startService(loadConfig(env), createLogger('silent'))
  const file = join(tmpdir(), `rhpool-webhook-deliveries-${process.pid}-${mode}.json`)
  try {
    const running = await putJobsInFlight(service.sql, jobs)
    writeFileSync(file, JSON.stringify(deliveryOrder(running, duplicated)))
    await service.sql`checkpoint`
    const before = sampleCpu(dataDir)
    const report = await runSender(file, `http://127.0.0.1:${port}`, settings.senders)
    const spent = cpuSince(before, dataDir)
    const outcomes = await service.sql<{ outcome: string; n: number }[]>`
      select outcome, count(*)::int as n from rhpool.webhook_deliveries group by 1 order by 1`
    const events = (await service.sql`select count(*)::int as n from rhpool.job_events`)[0]!.n as number
    const expectedEvents = mode === 'trusted' ? jobs : 0
    if (events !== expectedEvents) throw new Error(`${mode}: expected ${expectedEvents} terminal events, found ${events}`)
    return {
      mode,
      report,
      serverCpu: spent.node,
      postgresCpu: spent.postgres,
      outcomes: Object.fromEntries(outcomes.map((o) => [o.outcome, o.n])),
    }
  } finally {
    rmSync(file, { force: true })
    await service.stop()
  }
}

function runSender(file: string, baseUrl: string, senders: number): Promise<SenderReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'lib', 'webhook-sender.ts'), file, baseUrl, String(senders)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      }
    )
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the sender exited with code ${code}`))
      try {
        resolve(JSON.parse(out) as SenderReport)
      } catch {
        reject(new Error(`the sender printed no report: ${out.slice(0, 200)}`))
      }
    })
  })
}

const started = performance.now()
printHeader(
  'rhpool webhook route: callbacks per second, and whose CPU',
  `npx tsx bench/webhook.ts ${process.argv.slice(2).join(' ')}`.trimEnd()
)
console.log(
  `${settings.deliveries} deliveries per mode, ${Math.round(settings.duplicates * 100)}% of them duplicates, ${settings.senders} in flight; senders in a child process`
)
const results = await withThrowawayCluster('webhook', async (cluster) => {
  const out: ModeResult[] = []
  for (const mode of settings.modes) {
    const url = await cluster.createDatabase(`webhook_${mode}`)
    await migrate(url)
    out.push(await measureMode(url, cluster.dataDir, mode))
  }
  return out
})
const µs = (seconds: number, n: number) => whole((seconds / n) * 1e6)
console.log(
  '\n' +
    formatTable(
      [
        { header: 'callbacks', align: 'left' },
        { header: 'deliveries/s', align: 'right' },
        { header: 'p50 ms', align: 'right' },
        { header: 'p99 ms', align: 'right' },
        { header: 'route µs CPU', align: 'right' },
        { header: 'PostgreSQL µs CPU', align: 'right' },
        { header: 'senders µs CPU', align: 'right' },
        { header: 'statuses' },
        { header: 'outcomes' },
      ],
      results.map((r) => {
        const n = r.report.latencies.length
        const latency = summarize(r.report.latencies)
        return [
          r.mode,
          whole(n / r.report.seconds),
          fixed(latency.p50Ms),
          fixed(latency.p99Ms),
          µs(r.serverCpu, n),
          µs(r.postgresCpu, n),
          µs(r.report.cpuSeconds, n),
          Object.entries(r.report.statuses)
            .map(([s, k]) => `${s}×${k}`)
            .join(' '),
          Object.entries(r.outcomes)
            .map(([o, k]) => `${o} ${k}`)
            .join(', '),
        ]
      })
    )
)
console.log("(CPU per delivery: the route is rhpool's HTTP service, this process; the senders are the child process)")
console.log(`\nload average at end: ${loadAverage()}; total wall time: ${((performance.now() - started) / 1000).toFixed(1)} s`)
