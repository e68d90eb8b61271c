// Jobs already running at RunningHub, put there through rhpool's own functions
// (claim, begin_submission, record_submission) without a dispatcher or the
// simulator: their tasks are made up, so their callbacks can only be trusted
// or held. A stand-in dispatcher 'bench' holds primary's key, so the account
// takes work.
import type { Sql } from './bench-database.ts'

export interface JobInFlight {
  id: string
  task_id: string
}

export async function putJobsInFlight(sql: Sql, jobs: number): Promise<JobInFlight[]> {
  await sql`select * from rhpool.dispatcher_heartbeat('bench', ${sql.json([{ name: 'primary', fingerprint: 'fp_bench', slots: jobs }])}, 86400)`
  await sql`select * from rhpool.sync_accounts(${sql.json([{ name: 'primary', slots: jobs, position: 1, fingerprint: 'fp_bench' }])})`
  await sql`insert into upscaler_jobs (input_file_name) select 'in.png' from generate_series(1, ${jobs})`
  for (let claimed = 0; claimed < jobs;) {
    const batch = await sql`select job_table, job_id, claim_token from rhpool.claim_account_slot(1000, 'bench')`
    if (batch.length === 0) throw new Error(`claim_account_slot claimed nothing after ${claimed} of ${jobs} jobs`)
    for (const job of batch) {
      // Every step after the claim names its token.
      const [begun] = await sql`select rhpool.begin_submission(${job.job_table}, ${job.job_id}, ${job.claim_token}, 30) as job`
      const [recorded] =
        await sql`select rhpool.record_submission(${job.job_table}, ${job.job_id}, ${job.claim_token}, ${`19${String(claimed).padStart(17, '0')}`}) as status`
      if (begun!.job === null || recorded!.status !== 'running')
        throw new Error(`job ${job.job_id} not running after its submission: ${recorded!.status}`)
      claimed++
    }
  }
  return (await sql`select id::text, task_id from upscaler_jobs where status = 'running'`) as unknown as JobInFlight[]
}

/** RunningHub's TASK_END for a task that succeeded, as the captured callbacks have it. */
export function successCallback(taskId: string): string {
  return JSON.stringify({
    event: 'TASK_END',
    taskId,
    eventData: {
      taskId,
      status: 'SUCCESS',
      results: [{ url: 'https://cdn.example/o.png', nodeId: '9', outputType: 'png' }],
      usage: { consumeMoney: '0.05', consumeCoins: '5', taskCostTime: '3', thirdPartyConsumeMoney: '0' },
    },
  })
}
