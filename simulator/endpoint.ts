import type { FastifyRequest } from 'fastify'
import type { RequestFault } from './faults.ts'
import type { MultipartUpload } from './multipart.ts'
import type { FaultKind } from './types.ts'
import { classicError, v2Error } from './views.ts'
import { errorName } from './error-codes.ts'

/** How an endpoint words an error: v2 task object, v2 plain object, v2 upload envelope, classic envelope. */
export type ErrorShape = 'v2task' | 'v2plain' | 'v2upload' | 'classic'

export interface Prepared {
  apiKey: string | undefined
  path: string
  params: Record<string, string>
  body: Record<string, unknown>
  upload: MultipartUpload | null
}

export interface Answer {
  status?: number
  body: unknown
}

export interface Endpoint {
  method: 'GET' | 'POST'
  url: string
  errorShape: ErrorShape
  isCreate?: boolean
  multipart?: boolean
  /** Where this endpoint reads the caller's key from. */
  key(req: FastifyRequest, body: Record<string, unknown>, upload: MultipartUpload | null): string | undefined
  handle(input: Prepared, fault: RequestFault | null): Promise<Answer>
  /** Create endpoints log exchanges a fault answered (or abandoned) without processing. */
  shortCircuited?(input: Prepared, outcome: string, fault: FaultKind): void
}

export function bearerKey(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization
  if (typeof header !== 'string') return undefined
  const match = /^Bearer\s+(.+)$/i.exec(header.trim())
  return match?.[1]?.trim() || undefined
}

export function errorBody(shape: ErrorShape, code: string | number, message?: string, taskId = ''): unknown {
  const text = message ?? errorName(code)
  switch (shape) {
    case 'v2task':
      return v2Error(code, text, taskId)
    case 'v2plain':
      return { errorCode: String(code), errorMessage: text }
    case 'v2upload':
      return { code: Number(code) || code, message: text, data: null }
    case 'classic':
      return classicError(code, text)
  }
}
