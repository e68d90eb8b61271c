// JSON from outside (RunningHub's callbacks and answers) on its way into
// jsonb. PostgreSQL's jsonb refuses \u0000 and unpaired UTF-16 surrogates, so a
// callback carrying one would fail every delivery (and RunningHub would resend
// it for ever). Such characters become U+FFFD; everything else is kept as sent.

const unsafe = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

export function jsonbSafeText(text: string): string {
  return text.replace(unsafe, '\ufffd')
}

export function jsonbSafe<T>(value: T): T {
  if (typeof value === 'string') return jsonbSafeText(value) as T
  if (Array.isArray(value)) return value.map((item) => jsonbSafe(item)) as T
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [jsonbSafeText(key), jsonbSafe(item)])) as T
  }
  return value
}

/**
 * How deep a parsed JSON value nests, counted without recursion (a hostile
 * body nested 50,000 levels must not overflow the stack), stopping at `limit`.
 */
export function nestingExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!
    if (depth > limit) return true
    if (item && typeof item === 'object') {
      for (const child of Object.values(item as Record<string, unknown>)) {
        if (child && typeof child === 'object') stack.push([child, depth + 1])
      }
    }
  }
  return false
}
