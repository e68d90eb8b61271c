// Account health, probed with each account's own key: its real concurrency
// limit (queue/status) and balance (accountStatus) are recorded for status;
// an account disabled by an answer is re-enabled once it works again; one whose
// balance fell below the minimum leaves rotation before RunningHub refuses work.
//
// "Works again" is accountStatus answering with the key accepted and the
// balance above the minimum. queue/status only adds the reported limit: one
// source says it is still "developing", so health never waits for it.
import {
  accountStatus,
  disableLowBalanceAccount,
  minBalance as readMinBalance,
  recordAccountHealth,
  reenableRecoveredAccount,
} from '../db/rhpool.ts'
import type { MaintenanceOptions } from './maintenance.ts'

export async function probeAccounts(options: MaintenanceOptions): Promise<void> {
  const { sql, client, log } = options
  const minBalance = await readMinBalance(sql)
  const states = await accountStatus(sql)
  for (const state of states) {
    const account = options.accounts().get(state.name)
    // Only accounts this dispatcher holds the recorded key of (its account map).
    if (!account) continue
    const [queue, status] = await Promise.all([client.queueStatus(account.apiKey), client.accountStatus(account.apiKey)])
    // Amounts stay RunningHub's decimal strings all the way into numeric columns: no float rounding.
    const decimal = (value: string | null | undefined): string | null =>
      value && /^-?\d+(\.\d+)?$/.test(value.trim()) ? value.trim() : null
    const moneyText = status.ok ? decimal(status.value.remainMoney) : null
    const coinsText = status.ok ? decimal(status.value.remainCoins) : null
    const money = moneyText === null ? null : Number(moneyText)
    const limit = queue.ok ? queue.value.concurrentLimit : null
    await recordAccountHealth(sql, account.name, { remainMoney: moneyText, remainCoins: coinsText, reportedConcurrency: limit })
    if (limit !== null && limit < state.configured_slots) {
      log.warn(
        { account: account.name, slots: state.configured_slots, reportedConcurrency: limit },
        'RunningHub reports a lower concurrency limit than the configured slots: admission uses it'
      )
    }
    if (!queue.ok)
      log.debug({ account: account.name, code: queue.code }, 'queue/status did not answer; health is judged by accountStatus alone')
    const lowBalance = money !== null && minBalance > 0 && money < minBalance
    if (state.enabled && lowBalance) {
      // Disabled and logged in one transaction (rhpool.disable_low_balance_account).
      if (!(await disableLowBalanceAccount(sql, account.name, moneyText!, minBalance))) continue
      log.warn({ account: account.name, balance: moneyText }, 'account taken out of rotation: low balance')
    } else if (!state.enabled && status.ok && !lowBalance && (money === null || money > 0)) {
      // Re-enabled only when it was disabled for its key's state, never an operator's disable (rhpool.reenable_recovered_account).
      // Logged as account_reenabled in the same transaction.
      if (!(await reenableRecoveredAccount(sql, account.name))) continue
      log.info({ account: account.name, was: state.disabled_reason }, 'account works again: back in rotation')
    }
  }
}
