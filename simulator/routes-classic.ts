// RunningHub's classic API: key in the JSON body, `{code, msg, data}` envelope, HTTP 200
// even for errors.
import type { RouteContext } from './context.ts'
import type { CreateInput } from './create.ts'
import { Code, errorName } from './error-codes.ts'
import { bearerKey, type Answer, type Endpoint, type Prepared } from './endpoint.ts'
import { formatCents } from './money.ts'
import type { SimTask } from './task.ts'
import { storeUpload, uploadLimitBytes } from './uploads.ts'
import { classicError, classicOk, classicOutputsAnswer, promptTips } from './views.ts'
import type { FastifyRequest } from 'fastify'

/** Newer pages also accept the Bearer header; the body's apiKey wins. */
function bodyKey(req: FastifyRequest, body: Record<string, unknown>): string | undefined {
  return typeof body.apiKey === 'string' && body.apiKey !== '' ? body.apiKey : bearerKey(req)
}

/** accountStatus spells it `apikey`; a body with `apiKey` alone is unauthorized, as there. */
function lowerCaseBodyKey(req: FastifyRequest, body: Record<string, unknown>): string | undefined {
  return typeof body.apikey === 'string' && body.apikey !== '' ? body.apikey : bearerKey(req)
}

export function classicEndpoints(ctx: RouteContext): Endpoint[] {
  const unauthorized: Answer = { body: classicError(Code.unauthorized) }

  const createInput = (input: Prepared, kind: 'ai-app' | 'workflow'): CreateInput => {
    const id = kind === 'ai-app' ? input.body.webappId : input.body.workflowId
    return {
      api: 'classic',
      kind,
      path: input.path,
      appId: typeof id === 'string' || typeof id === 'number' ? String(id) : '',
      apiKey: input.apiKey,
      nodeInfoList: input.body.nodeInfoList,
      webhookUrl: input.body.webhookUrl,
      instanceType: input.body.instanceType,
      nodeInfoOptional: kind === 'workflow',
    }
  }

  const run = (kind: 'ai-app' | 'workflow', url: string): Endpoint => ({
    method: 'POST',
    url,
    errorShape: 'classic',
    isCreate: true,
    key: bodyKey,
    shortCircuited: (input, outcome, fault) => ctx.create.record(createInput(input, kind), outcome, fault),
    async handle(input, fault) {
      const result = await ctx.create.run(createInput(input, kind), fault)
      if (!result.ok) return { body: classicError(result.code, result.message) }
      const { task, statusAtAdmission } = result.admission
      return {
        // Sample 8's keys, in its order.
        body: classicOk({
          netWssUrl: null,
          taskId: task.taskId,
          clientId: task.clientId,
          taskStatus: statusAtAdmission,
          promptTips,
        }),
      }
    },
  })

  /** Endpoints that act on one of the caller's tasks. */
  const onTask = (url: string, act: (task: SimTask) => Answer): Endpoint => ({
    method: 'POST',
    url,
    errorShape: 'classic',
    key: bodyKey,
    async handle(input) {
      if (input.apiKey === undefined || !ctx.accounts.get(input.apiKey)) return unauthorized
      const taskId = input.body.taskId
      if ((typeof taskId !== 'string' && typeof taskId !== 'number') || taskId === '') {
        return { body: classicError(Code.paramsInvalid, 'PARAMS_INVALID: taskId is required') }
      }
      const task = ctx.engine.find(input.apiKey, String(taskId))
      if (!task) return { body: classicError(Code.notFound) }
      return act(task)
    },
  })

  return [
    run('ai-app', '/task/openapi/ai-app/run'),
    run('workflow', '/task/openapi/create'),
    onTask('/task/openapi/status', (task) => ({ body: classicOk(task.status) })),
    onTask('/task/openapi/outputs', (task) => ({ body: classicOutputsAnswer(task) })),
    onTask('/task/openapi/cancel', (task) => {
      ctx.engine.cancel(task)
      return { body: classicOk(null) }
    }),
    onTask('/task/openapi/getWebhookDetail', (task) => ({ body: classicOk(ctx.callbacks.detail(task.taskId) ?? null) })),
    {
      method: 'POST',
      url: '/task/openapi/retryWebhook',
      errorShape: 'classic',
      key: bodyKey,
      async handle(input) {
        const apiKey = input.apiKey
        if (apiKey === undefined || !ctx.accounts.get(apiKey)) return unauthorized
        const { webhookId, webhookUrl } = input.body
        if (typeof webhookId !== 'string' && typeof webhookId !== 'number') {
          return { body: classicError(Code.paramsInvalid, 'PARAMS_INVALID: webhookId is required') }
        }
        const url = typeof webhookUrl === 'string' ? webhookUrl : undefined
        const found = ctx.callbacks.retry(String(webhookId), url, (taskId) => ctx.engine.find(apiKey, taskId))
        return { body: found ? classicOk(null) : classicError(Code.notFound) }
      },
    },
    {
      method: 'POST',
      url: '/uc/openapi/accountStatus',
      errorShape: 'classic',
      key: lowerCaseBodyKey,
      async handle(input) {
        const account = ctx.accounts.get(input.apiKey)
        if (!account) return unauthorized
        return {
          body: classicOk({
            remainCoins: String(account.coins),
            currentTaskCounts: String(ctx.engine.load(account.apiKey).total),
            remainMoney: formatCents(account.balanceCents),
            currency: 'USD',
            apiType: account.apiKeyType,
          }),
        }
      },
    },
    {
      method: 'POST',
      url: '/task/openapi/upload',
      errorShape: 'classic',
      multipart: true,
      key: bodyKey,
      async handle(input) {
        const account = ctx.accounts.get(input.apiKey)
        if (!account) return unauthorized
        const file = input.upload?.file
        if (!file) return { body: classicError(Code.paramsInvalid, 'PARAMS_INVALID: multipart field "file" is required') }
        if (file.bytes.length > uploadLimitBytes) {
          return { body: classicError(Code.fileTooLarge, `${errorName(Code.fileTooLarge)}: file exceeds 30 MB`) }
        }
        const stored = storeUpload(account, file, 'api')
        return { body: classicOk({ fileName: stored.fileName, fileType: input.body.fileType ?? stored.mediaType }) }
      },
    },
  ]
}
