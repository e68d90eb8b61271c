// The HTTP side of RunningHub: one function per endpoint rhpool uses, each
// returning a typed outcome instead of throwing, so the caller decides by
// class (see classify.ts). Bodies are never assumed to be JSON: a proxy's HTML
// page is a transient failure, not a crash.
//
// "Was the request sent?" matters (guarantee 4): a failure to connect means
// RunningHub never saw it and a retry is safe; a failure after connecting
// means it may have started the task, so the outcome is unknown.
import { Agent, request, FormData } from 'undici'
import { z } from 'zod'
import { classifyAnswer, readAnswer, readTaskAnswer, type AnswerError, type RawAnswer } from './classify.ts'

export interface NodeInfo {
  nodeId: string
  fieldName: string
  fieldValue: string | number | boolean
}

export type CallOutcome<T> =
  | { ok: true; value: T }
  | AnswerError
  /** Never reached RunningHub (connection refused, DNS, connect timeout): safe to retry. */
  | { ok: false; kind: 'not_sent'; cls: 'transient'; code: string; message: string }
  /** Sent, but no answer came back: RunningHub may have acted on it. */
  | { ok: false; kind: 'unknown'; code: string; message: string }

export interface RunningHubTask {
  taskId: string
  status: string
  errorCode?: string
  errorMessage?: string
  results?: Array<{ url?: string; nodeId?: string; outputType?: string; text?: string }> | null
  failedReason?: Record<string, unknown> | null
  /** Strings or null, as RunningHub sends them (consumeMoney is null in every real sample). */
  usage?: Record<string, string | null> | null
  /** The create answer's ComfyUI validation, a JSON string (see promptRefusal). */
  promptTips?: string | null
  taskUsageList?: unknown[] | null
}

// A count RunningHub sends as a number or as a numeric string ("1").
const count = z
  .union([z.number(), z.string().trim().regex(/^\d+$/, 'expected a whole number').transform(Number)])
  .pipe(z.number().int().nonnegative())
const queueStatusAnswer = z.object({
  data: z.object({
    apiKeyType: z.string().optional(),
    concurrentLimit: count,
    runningCount: count,
    queuedCount: count,
    totalCurrentTasks: count,
  }),
})

export type QueueStatus = z.infer<typeof queueStatusAnswer>['data']

export interface AccountStatus {
  remainMoney: string | null
  remainCoins: string | null
  currentTaskCounts: string | null
}

const notSentCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH'])

export class RunningHubClient {
  private readonly agent: Agent

  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs: number
  ) {
    this.agent = new Agent({
      connectTimeout: Math.min(timeoutMs, 10_000),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 4_000,
    })
  }

  async close(): Promise<void> {
    await this.agent.close()
  }

  /** POST /openapi/v2/run/ai-app/{webappId}: start a task. */
  runAiApp(
    apiKey: string,
    webappId: string,
    body: { nodeInfoList: NodeInfo[]; webhookUrl?: string; instanceType?: string }
  ): Promise<CallOutcome<RunningHubTask>> {
    return this.callV2(apiKey, 'POST', `/openapi/v2/run/ai-app/${encodeURIComponent(webappId)}`, body, (answer, httpStatus) => {
      const refused = promptRefusal(answer.promptTips)
      if (refused) return { ok: false, kind: 'answer', cls: 'bad_request', code: 'NODE_ERRORS', message: refused, httpStatus }
      const taskId = answer.taskId === undefined || answer.taskId === null ? '' : String(answer.taskId)
      return taskId
        ? null
        : { ok: false, kind: 'answer', cls: 'transient', code: 'MALFORMED_ANSWER', message: 'the answer has no taskId', httpStatus }
    })
  }

  /** POST /openapi/v2/query: a task's status, results and usage. */
  query(apiKey: string, taskId: string): Promise<CallOutcome<RunningHubTask>> {
    return this.callV2(apiKey, 'POST', '/openapi/v2/query', { taskId }, () => null)
  }

  /**
   * GET /openapi/v2/queue/status: the account's real limit and load. Wrapped in
   * {code, msg, data}, unlike the task endpoints, with counts as strings
   * (runninghub-samples.md, 9).
   */
  async queueStatus(apiKey: string): Promise<CallOutcome<QueueStatus>> {
    const outcome = await this.send('GET', '/openapi/v2/queue/status', { authorization: `Bearer ${apiKey}` }, undefined)
    if (!outcome.ok) return outcome
    const answer = outcome.value
    if (answer.status < 200 || answer.status >= 300 || !answer.json || Number(answer.json.code) !== 0) return classifyAnswer(answer)
    const parsed = queueStatusAnswer.safeParse(answer.json)
    if (parsed.success) return { ok: true, value: parsed.data.data }
    const problem = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')
    return {
      ok: false,
      kind: 'answer',
      cls: 'transient',
      code: 'MALFORMED_ANSWER',
      message: `queue/status: ${problem}`,
      httpStatus: answer.status,
    }
  }

  /** POST /uc/openapi/accountStatus (classic; note the lower-case `apikey`). */
  async accountStatus(apiKey: string): Promise<CallOutcome<AccountStatus>> {
    const outcome = await this.callClassic('/uc/openapi/accountStatus', { apikey: apiKey })
    if (!outcome.ok) return outcome
    const data = (outcome.value ?? {}) as Record<string, unknown>
    const text = (v: unknown): string | null => (v === undefined || v === null ? null : String(v))
    return {
      ok: true,
      value: { remainMoney: text(data.remainMoney), remainCoins: text(data.remainCoins), currentTaskCounts: text(data.currentTaskCounts) },
    }
  }

  /** POST /task/openapi/cancel (classic): stop a queued or running task. */
  async cancel(apiKey: string, taskId: string): Promise<CallOutcome<null>> {
    const outcome = await this.callClassic('/task/openapi/cancel', { apiKey, taskId })
    return outcome.ok ? { ok: true, value: null } : outcome
  }

  /** POST /openapi/v2/media/upload/binary: a file visible to this key only. */
  async upload(apiKey: string, file: Blob, fileName: string): Promise<CallOutcome<{ fileName: string }>> {
    const form = new FormData()
    form.append('file', file, fileName)
    const outcome = await this.send('POST', '/openapi/v2/media/upload/binary', { authorization: `Bearer ${apiKey}` }, form)
    if (!outcome.ok) return outcome
    const answer = outcome.value
    const data = (answer.json?.data ?? {}) as Record<string, unknown>
    if (answer.json && Number(answer.json.code) === 0 && typeof data.fileName === 'string') {
      return { ok: true, value: { fileName: data.fileName } }
    }
    return classifyAnswer(answer)
  }

  private async callV2(
    apiKey: string,
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    refuse: (answer: Record<string, unknown>, httpStatus: number) => CallOutcome<never> | null
  ): Promise<CallOutcome<RunningHubTask>> {
    const outcome = await this.send(
      method,
      path,
      { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body === undefined ? undefined : JSON.stringify(body)
    )
    if (!outcome.ok) return outcome
    const read = readTaskAnswer(outcome.value)
    if (!read.ok) return read
    const refused = refuse(read.task, outcome.value.status)
    if (refused) return refused
    return { ok: true, value: { ...(read.task as unknown as RunningHubTask), taskId: read.taskId } }
  }

  private async callClassic(path: string, body: Record<string, unknown>): Promise<CallOutcome<unknown>> {
    const outcome = await this.send('POST', path, { 'content-type': 'application/json' }, JSON.stringify(body))
    if (!outcome.ok) return outcome
    const answer = outcome.value
    if (answer.status >= 200 && answer.status < 300 && answer.json && Number(answer.json.code) === 0) {
      return { ok: true, value: answer.json.data ?? null }
    }
    return classifyAnswer(answer)
  }

  private async send(
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body: string | FormData | undefined
  ): Promise<CallOutcome<RawAnswer>> {
    try {
      const response = await request(`${this.baseUrl}${path}`, { method, headers, body, dispatcher: this.agent })
      return { ok: true, value: readAnswer(response.statusCode, await response.body.text()) }
    } catch (error) {
      const code = String((error as { code?: string }).code ?? (error as Error).name ?? 'ERROR')
      const message = (error as Error).message
      if (notSentCodes.has(code)) return { ok: false, kind: 'not_sent', cls: 'transient', code, message }
      return { ok: false, kind: 'unknown', code, message }
    }
  }
}

/**
 * The reason a create answer's promptTips (a JSON string) refuses the
 * workflow, or null: a non-empty `node_errors` means ComfyUI rejected the
 * prompt (RunningHub's own script treats it as a failed submission).
 */
export function promptRefusal(promptTips: unknown): string | null {
  if (typeof promptTips !== 'string' || promptTips.trim() === '') return null
  let tips: unknown
  try {
    tips = JSON.parse(promptTips)
  } catch {
    return null // truncated or not JSON: it says nothing we can act on
  }
  const errors = tips && typeof tips === 'object' ? (tips as Record<string, unknown>).node_errors : null
  if (!errors || typeof errors !== 'object' || Object.keys(errors).length === 0) return null
  const detail = (tips as Record<string, unknown>).error
  const summary = detail && typeof detail === 'object' ? (detail as Record<string, unknown>).message : detail
  return `the workflow was refused: ${[summary, `node_errors ${JSON.stringify(errors)}`].filter((p) => typeof p === 'string' && p !== '').join('; ')}`.slice(
    0,
    500
  )
}
