import type { AccountBook } from './accounts.ts'
import type { CallbackSender } from './callbacks.ts'
import type { CreateFlow } from './create.ts'
import type { TaskEngine } from './engine.ts'
import type { SimulatorConfig } from './types.ts'

/** What route handlers need from the simulator. */
export interface RouteContext {
  accounts: AccountBook
  engine: TaskEngine
  create: CreateFlow
  callbacks: CallbackSender
  config: () => SimulatorConfig
}
