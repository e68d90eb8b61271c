// One start path: the tool registry (rhpool.tools, data in the database) says
// which RunningHub app a job runs and how its columns become nodeInfoList
// entries. The dispatcher builds every submission through this module.
import type { NodeInfo } from '../runninghub/client.ts'

export interface AppChoice {
  /** The job column whose value picks the app (e.g. upscaler `version`). */
  column?: string
  apps: Record<string, string>
  default?: string
}

export interface NodeMapping {
  nodeId: string
  fieldName: string
  /** A plain column value. */
  column?: string
  /**
   * A file input: [url column, file name column]; the URL wins. RunningHub
   * takes a public URL as fieldValue (its docs say so above its 30 MB upload
   * cap), so the URL is passed through and rhpool never fetches it…
   */
  file?: [string, string]
  /**
   * …unless this is true: then rhpool downloads the URL (public addresses
   * only, capped, under a deadline) and uploads it with the running account's
   * key, and fieldValue is RunningHub's file name. For fields whose node
   * cannot read a URL.
   */
  upload?: boolean
  /** A constant value. */
  value?: string | number | boolean
  /** Skip the entry when the column is null instead of failing the job. */
  optional?: boolean
}

export interface ToolDefinition {
  tool: string
  app: AppChoice
  node_map: NodeMapping[]
  instance_type?: string | null
}

/** A job that cannot be submitted as it is: failing it is the only honest answer. */
export class JobInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly code = 'INVALID_INPUT'
  ) {
    super(message)
    this.name = 'JobInputError'
  }
}

export function chooseApp(tool: ToolDefinition, job: Record<string, unknown>, overrides: Record<string, string> = {}): string {
  const { app } = tool
  const key = app.column ? String(job[app.column] ?? app.default ?? 'default') : 'default'
  const override = overrides[`${tool.tool}:${key}`] ?? (key === 'default' ? overrides[tool.tool] : undefined)
  const webappId = override ?? app.apps[key]
  if (!webappId) {
    throw new JobInputError(
      app.column ?? 'app',
      `${tool.tool}: no RunningHub app for ${app.column ?? 'this tool'} = ${JSON.stringify(key)} (known: ${Object.keys(app.apps).join(', ')})`
    )
  }
  return webappId
}

/** A URL passed to RunningHub as it is: RunningHub fetches it, so only its form is checked here. */
function passThroughUrl(url: string, field: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new JobInputError(field, `${field} is not a URL: ${JSON.stringify(url.slice(0, 200))}`, 'INVALID_INPUT_URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new JobInputError(field, `${field} must be an http(s) URL, got ${parsed.protocol}`, 'INVALID_INPUT_URL')
  }
  return url
}

/**
 * Builds nodeInfoList. `resolveFile(url)` is called only for entries marked
 * `upload`: it uploads the URL's file with the key of the account that will
 * run the job and returns RunningHub's file name.
 */
export async function buildNodeInfoList(
  tool: ToolDefinition,
  job: Record<string, unknown>,
  resolveFile: (url: string, field: string) => Promise<string>
): Promise<NodeInfo[]> {
  const list: NodeInfo[] = []
  for (const entry of tool.node_map) {
    let value: string | number | boolean | null = null
    let field = entry.column ?? entry.file?.join(' or ') ?? 'value'
    if (entry.value !== undefined) {
      value = entry.value
    } else if (entry.file) {
      const [urlColumn, nameColumn] = entry.file
      const url = job[urlColumn]
      const name = job[nameColumn]
      if (typeof url === 'string' && url.trim() !== '') {
        field = urlColumn
        value = entry.upload === true ? await resolveFile(url.trim(), urlColumn) : passThroughUrl(url.trim(), urlColumn)
      } else if (typeof name === 'string' && name.trim() !== '') {
        value = name.trim()
      }
    } else if (entry.column) {
      const raw = job[entry.column]
      value = raw === null || raw === undefined ? null : typeof raw === 'number' || typeof raw === 'boolean' ? raw : String(raw)
    }
    if (value === null || value === '') {
      if (entry.optional) continue
      throw new JobInputError(field, `${tool.tool}: ${field} is required for node ${entry.nodeId} (${entry.fieldName}) but is empty`)
    }
    list.push({ nodeId: entry.nodeId, fieldName: entry.fieldName, fieldValue: value })
  }
  return list
}
