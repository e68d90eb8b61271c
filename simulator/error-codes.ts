// RunningHub's error codes and the names its answers carry. Names come from
// runninghub-api.md; where the documentation gives a code without a name, the simulator
// uses a descriptive placeholder (marked below) — clients must classify by code, not text.

const names: Record<string, string> = {
  // this account is full right now
  '421': 'TASK_QUEUE_MAXED',
  '415': 'TASK_INSTANCE_MAXED',
  '814': 'PERSONAL_QUEUE_COUNT_LIMIT',
  '1003': 'RATE_LIMITED', // placeholder name
  '1011': 'SYSTEM_BUSY', // placeholder name
  '1520': 'TASK_USER_CONCURRENT_LIMIT',
  // this account or key is broken
  '801': 'APIKEY_INVALID', // placeholder name
  '802': 'APIKEY_UNAUTHORIZED',
  '806': 'APIKEY_USER_NOT_FOUND',
  '811': 'APIKEY_DISABLED', // placeholder name
  '812': 'CORPAPIKEY_INSUFFICIENT_FUNDS',
  '416': 'TASK_CREATE_FAILED_BY_NOT_ENOUGH_WALLET',
  '436': 'ACCOUNT_RESTRICTED', // placeholder name
  '1002': 'INVALID_API_KEY', // placeholder name
  '1014': 'ACCOUNT_SUSPENDED', // placeholder name
  // this request is bad
  '301': 'PARAMS_INVALID',
  '380': 'WORKFLOW_NOT_EXISTS',
  '412': 'NODE_INFO_MISMATCH', // placeholder name
  '433': 'VALIDATE_PROMPT_FAILED',
  '435': 'MODEL_NOT_AVAILABLE', // placeholder name
  '803': 'APIKEY_INVALID_NODE_INFO',
  '809': 'WORKFLOW_INVALID', // placeholder name
  '810': 'WORKFLOW_NOT_SAVED_OR_NOT_RUNNING',
  '901': 'WEBAPP_NOT_EXISTS',
  '1001': 'INVALID_REQUEST', // placeholder name
  '1004': 'UNSUPPORTED_OPERATION', // placeholder name
  '1501': 'CONTENT_MODERATION_FAILED', // placeholder name
  '1505': 'CONTENT_MODERATION_REJECTED', // placeholder name
  // transient
  '500': 'INTERNAL_SERVER_ERROR',
  '808': 'TASK_SUBMIT_FAILED', // placeholder name
  '1000': 'SYSTEM_ERROR', // placeholder name
  '1005': 'SERVICE_UNAVAILABLE', // placeholder name
  '1006': 'UPSTREAM_TIMEOUT', // placeholder name
  '1010': 'SERVICE_DEGRADED', // placeholder name
  '1012': 'RESOURCE_TEMPORARILY_UNAVAILABLE', // placeholder name
  '1013': 'RETRY_LATER', // placeholder name
  '1015': 'GATEWAY_ERROR', // placeholder name
  '1504': 'GATEWAY_TIMEOUT', // placeholder name
  // task life
  '804': 'APIKEY_TASK_IS_RUNNING',
  '805': 'APIKEY_TASK_IS_FAILED',
  '807': 'APIKEY_TASK_NOT_FOUND',
  '813': 'APIKEY_TASK_IS_QUEUED',
}

export function errorName(code: number | string): string {
  return names[String(code)] ?? `ERROR_${code}`
}

/** One code of every class of the table in runninghub-api.md: the default chaos mix. */
export const representativeCodes: readonly string[] = [
  '421',
  '415',
  '1011', // full
  '802',
  '416', // broken
  '301',
  '803',
  '1505', // bad request
  '1000',
  '1012',
  '808', // transient
]

export const Code = {
  paramsInvalid: '301',
  workflowNotExists: '380',
  notEnoughWallet: '416',
  queueMaxed: '421',
  unauthorized: '802',
  invalidNodeInfo: '803',
  /** Uploads over 30 MB (runninghub-api.md: 809 / 1008). */
  fileTooLarge: '809',
  running: '804',
  failed: '805',
  notFound: '807',
  queued: '813',
  systemError: '1000',
  webappNotExists: '901',
} as const
