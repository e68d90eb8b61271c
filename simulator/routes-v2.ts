// RunningHub's v2 API: Bearer key, no envelope, the task object at the top level.
import type { RouteContext } from './context.ts'
import { Code, errorName } from './error-codes.ts'
import { bearerKey, errorBody, type Answer, type Endpoint, type Prepared } from './endpoint.ts'
import type { CreateInput } from './create.ts'
import { storeUpload, uploadLimitBytes } from './uploads.ts'
import { springError } from './pages.ts'
import { classicError, classicOk, queueStatusData, v2RunAnswer, v2TaskObject } from './views.ts'

export function v2Endpoints(ctx: RouteContext): Endpoint[] {
  const unauthorized = (shape: 'v2task' | 'v2plain' | 'v2upload'): Answer => ({
    status: ctx.config().unauthorizedHttpStatus,
    body: errorBody(shape, Code.unauthorized),
  })

  const createInput = (input: Prepared, kind: 'ai-app' | 'workflow'): CreateInput => ({
    api: 'v2',
    kind,
    path: input.path,
    appId: (kind === 'ai-app' ? input.params.webappId : input.params.workflowId) ?? '',
    apiKey: input.apiKey,
    nodeInfoList: input.body.nodeInfoList,
    webhookUrl: input.body.webhookUrl,
    instanceType: input.body.instanceType,
    nodeInfoOptional: false,
  })

  const run = (kind: 'ai-app' | 'workflow', url: string): Endpoint => ({
    method: 'POST',
    url,
    errorShape: 'v2task',
    isCreate: true,
    key: bearerKey,
    shortCircuited: (input, outcome, fault) => ctx.create.record(createInput(input, kind), outcome, fault),
    async handle(input, fault) {
      const result = await ctx.create.run(createInput(input, kind), fault)
      if (!result.ok) {
        if (result.code === Code.unauthorized) return unauthorized('v2task')
        return { body: errorBody('v2task', result.code, result.message) }
      }
      const { task, statusAtAdmission } = result.admission
      return { body: v2RunAnswer(task, statusAtAdmission) }
    },
  })

  return [
    run('ai-app', '/openapi/v2/run/ai-app/:webappId'),
    run('workflow', '/openapi/v2/run/workflow/:workflowId'),
    {
      method: 'POST',
      url: '/openapi/v2/query',
      errorShape: 'v2task',
      key: bearerKey,
      async handle(input) {
        if (!ctx.accounts.get(input.apiKey) || input.apiKey === undefined) return unauthorized('v2task')
        const taskId = input.body.taskId
        if ((typeof taskId !== 'string' && typeof taskId !== 'number') || taskId === '') {
          return { body: errorBody('v2task', Code.paramsInvalid, 'PARAMS_INVALID: taskId is required') }
        }
        const task = ctx.engine.find(input.apiKey, String(taskId))
        if (!task) return { body: errorBody('v2task', Code.notFound, undefined, String(taskId)) }
        return { body: v2TaskObject(task) }
      },
    },
    {
      // Wrapped in {code, msg, data} with counts as strings, unlike the task
      // endpoints: the shape captured from the real service (samples, 9).
      method: 'GET',
      url: '/openapi/v2/queue/status',
      errorShape: 'classic',
      key: bearerKey,
      async handle(input) {
        const mode = ctx.config().queueStatus
        // RunningHub's spec marks this endpoint "developing": it may not exist at all.
        if (mode === 'notFound') return { status: 404, body: springError(404, input.path) }
        if (mode === 'error') return { body: classicError(Code.systemError, 'the interface is still developing') }
        const account = ctx.accounts.get(input.apiKey)
        if (!account) return { status: ctx.config().unauthorizedHttpStatus, body: classicError(Code.unauthorized) }
        return { body: classicOk(queueStatusData(account, ctx.engine.load(account.apiKey))) }
      },
    },
    {
      method: 'POST',
      url: '/openapi/v2/media/upload/binary',
      errorShape: 'v2upload',
      multipart: true,
      key: bearerKey,
      async handle(input) {
        const account = ctx.accounts.get(input.apiKey)
        if (!account) return unauthorized('v2upload')
        const file = input.upload?.file
        if (!file) return { body: errorBody('v2upload', Code.paramsInvalid, 'PARAMS_INVALID: multipart field "file" is required') }
        if (file.bytes.length > uploadLimitBytes) {
          return { body: errorBody('v2upload', Code.fileTooLarge, `${errorName(Code.fileTooLarge)}: file exceeds 30 MB`) }
        }
        const stored = storeUpload(account, file, 'openapi')
        return {
          body: {
            code: 0,
            message: 'success',
            data: {
              type: stored.mediaType,
              download_url: `https://rh-images.example/input/${stored.fileName.slice('openapi/'.length)}`,
              fileName: stored.fileName,
              size: String(stored.size),
            },
          },
        }
      },
    },
  ]
}
