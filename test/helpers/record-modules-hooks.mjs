// Module hooks for record-modules.mjs: record each URL, then let resolution and loading go on
// unchanged (tsx, registered after these, still does the TypeScript).
import { appendFileSync } from 'node:fs'

let log = ''

export function initialize(data) {
  log = data.log
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context)
  appendFileSync(log, `${result.url}\n`)
  return result
}

export async function load(url, context, nextLoad) {
  appendFileSync(log, `${url}\n`)
  return nextLoad(url, context)
}
