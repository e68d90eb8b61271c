import { representativeCodes } from './error-codes.ts'
import type { Fault, FaultHandle, FaultKind, FaultRates, FaultSpec, SimulatorConfig } from './types.ts'

/** Faults that shape one HTTP exchange. */
export type RequestFault = Extract<FaultSpec, { kind: 'errorCode' | 'http5xx' | 'html' | 'slow' | 'acceptThenHang' | 'acceptThenDrop' }>
/** Faults that ride along with the next created task(s). */
export type TaskFault = Exclude<FaultSpec, RequestFault>

export type TaskFaults = { [K in TaskFault['kind']]?: Extract<TaskFault, { kind: K }> }

const requestKinds: ReadonlyArray<RequestFault['kind']> = ['errorCode', 'http5xx', 'html', 'slow', 'acceptThenHang', 'acceptThenDrop']
const taskKinds: ReadonlyArray<TaskFault['kind']> = [
  'callbackDuplicate',
  'callbackDelay',
  'callbackLost',
  'callbackEarly',
  'callbackOutOfOrder',
  'taskFailure',
  'forgetTask',
]

/** Defaults for faults drawn at random, where a rate gives no parameters. */
const randomDefaults: { [K in FaultKind]: Omit<Extract<FaultSpec, { kind: K }>, 'kind'> } = {
  errorCode: { code: '1000' },
  http5xx: { status: 502, body: 'empty' },
  html: { status: 502 },
  slow: { delayMs: 200 },
  acceptThenHang: {},
  acceptThenDrop: {},
  callbackDuplicate: { copies: 2, concurrent: true },
  callbackDelay: { delayMs: 200 },
  callbackLost: {},
  callbackEarly: {},
  callbackOutOfOrder: { variant: 'stale-event' },
  taskFailure: {},
  forgetTask: {},
}

interface Rule {
  readonly id: number
  readonly fault: Fault
  remaining: number
}

export interface FaultContext {
  path: string
  apiKey: string | undefined
  /** Rules without a path filter fire on create endpoints only. */
  isCreate: boolean
}

function isRequestKind(kind: FaultKind): kind is RequestFault['kind'] {
  return (requestKinds as readonly string[]).includes(kind)
}

/** Keeps injected rules in order and decides, per request and per task, which faults apply. */
export class FaultBook {
  private rules: Rule[] = []
  private nextId = 1

  constructor(
    private readonly random: () => number,
    private readonly config: () => SimulatorConfig
  ) {}

  inject(fault: Fault): FaultHandle {
    const times = fault.times ?? 1
    if (!(times > 0)) throw new RangeError(`times must be > 0, got ${times}`)
    const rule: Rule = { id: this.nextId++, fault, remaining: times }
    this.rules.push(rule)
    return {
      id: rule.id,
      remaining: () => rule.remaining,
      cancel: () => {
        rule.remaining = 0
        this.prune()
      },
    }
  }

  clear(): void {
    this.rules = []
  }

  /** The one fault (first injected rule, else a random draw) that shapes this exchange. */
  takeRequestFault(ctx: FaultContext): RequestFault | null {
    for (const rule of this.rules) {
      if (rule.remaining > 0 && isRequestKind(rule.fault.kind) && this.matches(rule.fault, ctx)) {
        this.consume(rule)
        return stripFilter(rule.fault) as RequestFault
      }
    }
    if (!ctx.isCreate) return null
    for (const kind of requestKinds) {
      const drawn = this.draw(kind)
      if (drawn) return drawn as RequestFault
    }
    return null
  }

  /** Every task fault (at most one per kind) attached to a task created now. */
  takeTaskFaults(ctx: FaultContext): TaskFaults {
    const taken: Record<string, TaskFault> = {}
    for (const rule of this.rules) {
      const kind = rule.fault.kind
      if (rule.remaining > 0 && !isRequestKind(kind) && !(kind in taken) && this.matches(rule.fault, ctx)) {
        this.consume(rule)
        taken[kind] = stripFilter(rule.fault) as TaskFault
      }
    }
    for (const kind of taskKinds) {
      if (kind in taken) continue
      const drawn = this.draw(kind)
      if (drawn) taken[kind] = drawn as TaskFault
    }
    return taken as TaskFaults
  }

  private draw(kind: FaultKind): FaultSpec | null {
    const rates: FaultRates = this.config().faultRates
    const setting = rates[kind]
    if (setting === undefined) return null
    const rate = typeof setting === 'number' ? setting : setting.rate
    if (!(this.random() < rate)) return null
    const params = typeof setting === 'number' ? {} : { ...setting, rate: undefined }
    const fault = { kind, ...randomDefaults[kind], ...stripUndefined(params) } as FaultSpec
    if (fault.kind === 'errorCode' && (typeof setting === 'number' || !('code' in setting) || setting.code === undefined)) {
      const codes = rates.errorCodes ?? representativeCodes
      fault.code = codes[Math.floor(this.random() * codes.length)] ?? '1000'
    }
    return fault
  }

  private matches(fault: Fault, ctx: FaultContext): boolean {
    if (fault.apiKey !== undefined && fault.apiKey !== ctx.apiKey) return false
    if (fault.path === undefined) return ctx.isCreate
    return typeof fault.path === 'string' ? ctx.path.startsWith(fault.path) : fault.path.test(ctx.path)
  }

  private consume(rule: Rule): void {
    rule.remaining -= 1
    this.prune()
  }

  private prune(): void {
    this.rules = this.rules.filter((r) => r.remaining > 0)
  }
}

function stripFilter(fault: Fault): FaultSpec {
  const { times: _t, apiKey: _k, path: _p, ...spec } = fault
  return spec as FaultSpec
}

function stripUndefined(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined))
}
