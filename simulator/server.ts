import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Endpoint, Prepared } from './endpoint.ts'
import { errorBody } from './endpoint.ts'
import type { FaultBook } from './faults.ts'
import { parseMultipart, type MultipartUpload } from './multipart.ts'
import { nginxErrorPage, springError } from './pages.ts'
import type { Timers } from './timers.ts'
import { uploadLimitBytes } from './uploads.ts'

// The proxy's limit leaves room for multipart framing around a 30 MB file.
const multipartBodyLimit = uploadLimitBytes + 1024 * 1024

export interface ServerDeps {
  faults: FaultBook
  timers: Timers
  bodyLimitBytes: number
  logger: boolean
}

/**
 * The HTTP face: Fastify with RunningHub's routes. Request faults (error codes, proxy
 * pages, slow, hang, drop) are applied here, around each endpoint's real work.
 */
export function buildServer(endpoints: Endpoint[], deps: ServerDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger,
    bodyLimit: deps.bodyLimitBytes,
    // Hanging answers (acceptThenHang) must not keep close() waiting.
    forceCloseConnections: true,
  })

  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer', bodyLimit: multipartBodyLimit }, (_req, body, done) => {
    done(null, body)
  })

  // Answer unparseable or oversized requests the way the proxy and the Spring service in
  // front of RunningHub do, not with Fastify's own wording.
  app.setErrorHandler((error: { statusCode?: number }, request, reply) => {
    const status = error.statusCode ?? 500
    if (status === 413) return reply.code(413).type('text/html').send(nginxErrorPage(413))
    return reply.code(status >= 400 && status < 600 ? status : 500).send(springError(status, pathOf(request)))
  })
  app.setNotFoundHandler((request, reply) => reply.code(404).send(springError(404, pathOf(request))))

  for (const endpoint of endpoints) {
    app.route({
      method: endpoint.method,
      url: endpoint.url,
      handler: (request, reply) => serve(endpoint, request, reply, deps),
    })
  }
  return app
}

function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0] ?? request.url
}

async function serve(endpoint: Endpoint, request: FastifyRequest, reply: FastifyReply, deps: ServerDeps): Promise<unknown> {
  const path = pathOf(request)
  const input = await prepare(endpoint, request, path)
  if ('badRequest' in input) return reply.code(400).send(springError(400, path))

  const fault = deps.faults.takeRequestFault({ path, apiKey: input.apiKey, isCreate: endpoint.isCreate === true })
  switch (fault?.kind) {
    case 'errorCode':
      endpoint.shortCircuited?.(input, String(fault.code), fault.kind)
      return reply.code(200).send(errorBody(endpoint.errorShape, fault.code, fault.message))
    case 'http5xx': {
      const status = fault.status ?? 503
      endpoint.shortCircuited?.(input, 'http5xx', fault.kind)
      if (fault.body === 'empty') return reply.code(status).send()
      return reply.code(status).send(springError(status, path))
    }
    case 'html':
      endpoint.shortCircuited?.(input, 'html', fault.kind)
      return reply
        .code(fault.status ?? 502)
        .type('text/html')
        .send(nginxErrorPage(fault.status ?? 502))
    case 'slow': {
      if (!(await deps.timers.sleep(fault.delayMs))) return reply.hijack()
      if (clientGone(request) && !fault.processIfClientGone) {
        // Never reached the service: nothing was created, nobody hears about it.
        endpoint.shortCircuited?.(input, 'abandoned', fault.kind)
        return reply.hijack()
      }
      break
    }
  }

  const answer = await endpoint.handle(input, fault)
  if (deps.timers.isClosed) return reply.hijack()

  if (fault?.kind === 'acceptThenHang') {
    reply.hijack()
    if (fault.hangMs !== undefined && (await deps.timers.sleep(fault.hangMs)) && !clientGone(request)) {
      reply.raw.writeHead(answer.status ?? 200, { 'content-type': 'application/json; charset=utf-8' })
      reply.raw.end(JSON.stringify(answer.body))
    }
    // Without hangMs the answer never comes: the client gives up, or close() cuts the socket.
    return
  }
  if (fault?.kind === 'acceptThenDrop') {
    reply.hijack()
    request.raw.socket.destroy()
    return
  }
  return reply.code(answer.status ?? 200).send(answer.body)
}

function clientGone(request: FastifyRequest): boolean {
  return request.raw.socket.destroyed
}

async function prepare(endpoint: Endpoint, request: FastifyRequest, path: string): Promise<Prepared | { badRequest: true }> {
  let body: Record<string, unknown> = {}
  let upload: MultipartUpload | null = null
  if (endpoint.multipart) {
    const contentType = request.headers['content-type'] ?? ''
    if (!Buffer.isBuffer(request.body) || !contentType.startsWith('multipart/form-data')) return { badRequest: true }
    try {
      upload = await parseMultipart(request.body, contentType)
    } catch {
      return { badRequest: true }
    }
    body = { ...upload.fields }
  } else if (typeof request.body === 'object' && request.body !== null && !Array.isArray(request.body)) {
    body = request.body as Record<string, unknown>
  }
  return {
    apiKey: endpoint.key(request, body, upload),
    path,
    params: (request.params ?? {}) as Record<string, string>,
    body,
    upload,
  }
}
