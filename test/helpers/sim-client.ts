// Plain HTTP calls to the simulator for tests: raw status and text, JSON when it parses.
export interface SimResponse {
  status: number
  text: string
  json: any
  contentType: string
}

export async function call(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  options: { key?: string; body?: unknown; rawBody?: string; signal?: AbortSignal } = {}
): Promise<SimResponse> {
  const headers: Record<string, string> = {}
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`
  let body: string | undefined
  if (options.rawBody !== undefined) body = options.rawBody
  else if (options.body !== undefined) body = JSON.stringify(options.body)
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(baseUrl + path, { method, headers, body, signal: options.signal })
  const text = await res.text()
  let json: unknown = null
  try {
    json = JSON.parse(text)
  } catch {
    json = null
  }
  return { status: res.status, text, json, contentType: res.headers.get('content-type') ?? '' }
}

export const nodeInfo = [{ nodeId: '3', fieldName: 'text', fieldValue: 'a cat' }]

export function runV2(baseUrl: string, key: string, body: Record<string, unknown> = {}, app = '1900000000000000001', signal?: AbortSignal) {
  return call(baseUrl, 'POST', `/openapi/v2/run/ai-app/${app}`, { key, body: { nodeInfoList: nodeInfo, ...body }, signal })
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls until check() is true, so tests do not depend on the machine's speed. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}
