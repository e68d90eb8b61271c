// `rhpool demo`: rhpool end to end on embedded defaults. A sample workload
// across the four tools flows through the pool while a live view shows slots,
// queues, progress and throughput; a summary ends it. Ctrl-C stops everything.
import { createWriteStream, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import pc from 'picocolors'
import { loadConfig } from '../config/index.ts'
import { projectRoot } from '../db/migrate.ts'
import { createLogger } from '../log.ts'
import { startService } from '../service.ts'
import { readStatus } from './commands.ts'
import { renderRows, renderStatus } from './render.ts'
import { prepareRuntime } from './runtime.ts'

export interface DemoOptions {
  jobs: number
  /** Task times are divided by this (1 = realistic seconds). */
  speed: number
  out?: NodeJS.WritableStream
}

const apps = {
  upscaler: '2015865378030755841',
  pose: '2018451429635133442',
  veste: '2018755100210106369',
  video: '2018810750139109378',
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const out = options.out ?? process.stdout
  const live = 'isTTY' in out && Boolean((out as NodeJS.WriteStream).isTTY)
  const seconds = (s: number) => Math.max(50, Math.round((s * 1000) / options.speed))
  const runtime = await prepareRuntime(process.env, {
    defaultTaskMs: seconds(3),
    simulatorTaskMs: { [apps.upscaler]: seconds(2), [apps.pose]: seconds(3), [apps.veste]: seconds(4), [apps.video]: seconds(8) },
    announce: (note) => out.write(`${pc.yellow('•')} ${note}\n`),
  })

  const logPath = join(runtime.database ? dirname(runtime.database.dataDir) : join(projectRoot, '.data'), 'demo.log')
  mkdirSync(dirname(logPath), { recursive: true })
  const config = loadConfig({ ...runtime.env, RHPOOL_POLL_INTERVAL_MS: runtime.env.RHPOOL_POLL_INTERVAL_MS ?? '500' })
  const service = await startService(config, createLogger('info', createWriteStream(logPath, { flags: 'a' })))
  out.write(`${pc.yellow('•')} rhpool is running: status at ${service.adminUrl}/status, logs in ${logPath}\n`)

  let interrupted = false
  const onSigint = () => {
    interrupted = true
  }
  process.once('SIGINT', onSigint)
  const { sql } = service
  try {
    const started = Date.now()
    const tables = ['upscaler_jobs', 'pose_changer_jobs', 'veste_ai_jobs', 'video_upscaler_jobs'] as const
    const ids: string[] = []
    for (let i = 0; i < options.jobs; i++) {
      const table = tables[i % 4]!
      const inputs: Record<string, Record<string, unknown>> = {
        upscaler_jobs: { input_file_name: `demo/photo-${i}.png`, version: ['pro', 'standard', 'longe'][i % 3] },
        pose_changer_jobs: { person_file_name: `demo/person-${i}.png`, reference_file_name: `demo/pose-${i}.png` },
        veste_ai_jobs: { person_file_name: `demo/person-${i}.png`, clothing_file_name: `demo/shirt-${i}.png` },
        video_upscaler_jobs: { input_file_name: `demo/clip-${i}.mp4`, video_width: 1280, video_height: 720, video_duration_seconds: 8 },
      }
      const [row] =
        await sql`insert into ${sql(table)} ${sql({ ...inputs[table], user_id: null, status: 'queued' } as Record<string, unknown>)} returning id`
      ids.push(row!.id as string)
    }
    out.write(`${pc.yellow('•')} queued ${options.jobs} jobs across the four tools\n`)

    for (;;) {
      const status = await readStatus(sql)
      const [progress] = await sql`select count(*) filter (where status in ('completed', 'failed', 'cancelled'))::int as done,
                                          count(*) filter (where status = 'completed')::int as completed
                                     from rhpool.jobs where id = any(${ids}::uuid[])`
      const elapsed = (Date.now() - started) / 1000
      const perMinute = elapsed > 0 ? Math.round((progress!.done / elapsed) * 60) : 0
      const line = `progress ${progress!.done}/${options.jobs} · ${perMinute} jobs/min · ${elapsed.toFixed(0)}s`
      if (live) out.write(`\x1b[2J\x1b[H${renderStatus(status)}\n${line}\n${pc.dim('Ctrl-C stops everything')}\n`)
      else out.write(`${line} · running ${status.totalRunning}/${status.totalMaxSlots} · queued ${status.totalQueued}\n`)
      if (progress!.done === options.jobs || interrupted) break
      await new Promise((resolve) => setTimeout(resolve, live ? 500 : 1000))
    }

    const summary = await sql`
      select coalesce(api_account, '-') as account, count(*)::int as jobs,
             count(*) filter (where status = 'completed')::int as completed,
             round(avg(extract(epoch from submitted_at - created_at))::numeric, 1) as avg_wait_s,
             round((percentile_cont(0.95) within group (order by extract(epoch from submitted_at - created_at)))::numeric, 1) as p95_wait_s,
             coalesce(sum(rh_cost), 0) as cost
      from rhpool.jobs where id = any(${ids}::uuid[])
      group by 1 order by 1`
    out.write(
      `\n${pc.bold(interrupted ? 'Interrupted. Summary so far' : 'Summary')}\n${renderRows(summary, ['account', 'jobs', 'completed', 'avg_wait_s', 'p95_wait_s', 'cost'])}\n`
    )
    out.write(`demo finished in ${((Date.now() - started) / 1000).toFixed(1)}s\n`)
  } finally {
    process.removeListener('SIGINT', onSigint)
    await service.stop()
    await runtime.stop()
  }
}
