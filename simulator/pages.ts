// Bodies a proxy in front of RunningHub produces: what clients get when the service itself
// never saw (or never answered) the request.

const reasons: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  413: 'Request Entity Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Temporarily Unavailable',
  504: 'Gateway Time-out',
}

export function reasonPhrase(status: number): string {
  return reasons[status] ?? 'Error'
}

/** nginx's stock error page; served with HTTP 200 too, as some CDNs do. */
export function nginxErrorPage(status: number): string {
  const title = `${status === 200 ? 502 : status} ${reasonPhrase(status === 200 ? 502 : status)}`
  return [
    '<html>',
    `<head><title>${title}</title></head>`,
    '<body>',
    `<center><h1>${title}</h1></center>`,
    '<hr><center>nginx</center>',
    '</body>',
    '</html>',
    '',
  ].join('\r\n')
}

/** The JSON a Spring Boot service answers for requests it cannot parse or route. */
export function springError(status: number, path: string): Record<string, unknown> {
  return { timestamp: new Date().toISOString(), status, error: reasonPhrase(status), path }
}
