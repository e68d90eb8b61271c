import type { AccountBook } from './accounts.ts'
import { Code, errorName } from './error-codes.ts'
import { jobRefOf, type Admission, type TaskEngine } from './engine.ts'
import type { FaultBook, RequestFault } from './faults.ts'
import type { Ledger } from './ledger.ts'
import { fingerprint } from './fingerprint.ts'
import type { ApiFlavour, FaultKind, NodeInfo, SimulatorConfig, SubmissionOutcome } from './types.ts'

export interface CreateInput {
  api: ApiFlavour
  kind: 'ai-app' | 'workflow'
  path: string
  appId: string
  apiKey: string | undefined
  nodeInfoList: unknown
  webhookUrl: unknown
  instanceType: unknown
  /** Classic /task/openapi/create runs a saved workflow as it is when nodeInfoList is absent. */
  nodeInfoOptional: boolean
}

export type CreateResult = { ok: true; admission: Admission } | { ok: false; code: string; message: string }

type Validated = { ok: true; list: NodeInfo[] } | { ok: false; code: string; message: string }

/**
 * The one path every create call (v2 or classic, app or workflow) takes: the checks in the
 * order RunningHub makes them, admission, and the ledger entry for the attempt.
 */
export class CreateFlow {
  constructor(
    private readonly accounts: AccountBook,
    private readonly engine: TaskEngine,
    private readonly faults: FaultBook,
    private readonly ledger: Ledger,
    private readonly config: () => SimulatorConfig
  ) {}

  async run(input: CreateInput, requestFault: RequestFault | null): Promise<CreateResult> {
    const result = this.admit(input)
    this.record(input, result.ok ? 'accepted' : result.code, requestFault?.kind ?? null, result.ok ? result.admission.task.taskId : null)
    if (result.ok && result.admission.beforeAnswer) await result.admission.beforeAnswer
    return result
  }

  /** For exchanges a fault answered before any processing (errorCode, 5xx, HTML, abandoned). */
  record(input: CreateInput, outcome: SubmissionOutcome, fault: FaultKind | null, taskId: string | null = null): void {
    const webhookUrl = typeof input.webhookUrl === 'string' && input.webhookUrl !== '' ? input.webhookUrl : null
    this.ledger.recordSubmission({
      at: Date.now(),
      apiKey: input.apiKey === undefined ? '(none)' : fingerprint(input.apiKey),
      api: input.api,
      path: input.path,
      webappId: input.appId,
      nodeInfoList: input.nodeInfoList,
      webhookUrl,
      instanceType: typeof input.instanceType === 'string' ? input.instanceType : null,
      outcome,
      fault,
      taskId,
      jobRef: jobRefOf(webhookUrl),
    })
  }

  // Synchronous from the concurrency check to admission: nothing can slip in between.
  private admit(input: CreateInput): CreateResult {
    const fail = (code: string, message = errorName(code)) => ({ ok: false as const, code, message })
    const account = this.accounts.get(input.apiKey)
    if (!account) return fail(Code.unauthorized)

    const config = this.config()
    if (input.kind === 'ai-app' && config.knownWebappIds && !config.knownWebappIds.includes(input.appId)) {
      return fail(Code.webappNotExists)
    }
    if (input.kind === 'workflow' && config.knownWorkflowIds && !config.knownWorkflowIds.includes(input.appId)) {
      return fail(Code.workflowNotExists)
    }
    if (!input.appId)
      return fail(
        Code.paramsInvalid,
        `${errorName(Code.paramsInvalid)}: ${input.kind === 'ai-app' ? 'webappId' : 'workflowId'} is required`
      )

    const validated = validateNodeInfoList(input.nodeInfoList, input.nodeInfoOptional)
    if (!validated.ok) return validated
    for (const node of validated.list) {
      const value = node.fieldValue
      // Only with uploadsPerKey: no source says a file is visible only to the key that uploaded it.
      if (config.uploadsPerKey && typeof value === 'string' && /^(api|openapi)\//.test(value) && !account.uploads.has(value)) {
        return fail(
          Code.invalidNodeInfo,
          `${errorName(Code.invalidNodeInfo)}: file ${value} (node ${node.nodeId}) was not uploaded with this apiKey`
        )
      }
    }
    if (account.balanceCents <= 0) return fail(Code.notEnoughWallet)
    if (this.engine.load(account.apiKey).total >= account.concurrency + account.queueDepth) return fail(Code.queueMaxed)

    const taskFaults = this.faults.takeTaskFaults({ path: input.path, apiKey: input.apiKey, isCreate: true })
    const admission = this.engine.tryAdmit({
      account,
      api: input.api,
      kind: input.kind,
      appId: input.appId,
      nodeInfoList: validated.list,
      webhookUrl: typeof input.webhookUrl === 'string' && input.webhookUrl !== '' ? input.webhookUrl : null,
      instanceType: typeof input.instanceType === 'string' ? input.instanceType : null,
      faults: taskFaults,
    })
    if (admission === 'full') return fail(Code.queueMaxed)
    return { ok: true, admission }
  }
}

function validateNodeInfoList(value: unknown, optional: boolean): Validated {
  const invalid = (detail: string) => ({
    ok: false as const,
    code: Code.paramsInvalid,
    message: `${errorName(Code.paramsInvalid)}: ${detail}`,
  })
  if (value === undefined || value === null) return optional ? { ok: true, list: [] } : invalid('nodeInfoList is required')
  if (!Array.isArray(value)) return invalid('nodeInfoList must be an array')
  if (value.length === 0 && !optional) return invalid('nodeInfoList must not be empty')
  const list: NodeInfo[] = []
  for (const [index, entry] of value.entries()) {
    const bad = (field: string) => ({
      ok: false as const,
      code: Code.invalidNodeInfo,
      message: `${errorName(Code.invalidNodeInfo)}: nodeInfoList[${index}].${field} is missing or invalid`,
    })
    if (typeof entry !== 'object' || entry === null) return bad('(entry)')
    const node = entry as Record<string, unknown>
    if (typeof node.nodeId !== 'string' || node.nodeId === '') return bad('nodeId')
    if (typeof node.fieldName !== 'string' || node.fieldName === '') return bad('fieldName')
    const fv = node.fieldValue
    if (typeof fv !== 'string' && typeof fv !== 'number' && typeof fv !== 'boolean') return bad('fieldValue')
    list.push(node as unknown as NodeInfo)
  }
  return { ok: true, list }
}
