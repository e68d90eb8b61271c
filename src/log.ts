// Structured JSON logs (pino). One job's story can be followed by its
// `job` field ("<table>/<id>"). Secrets are redacted by path as a second line
// of defence; the first is that no code logs a key or the webhook secret.
import { pino, type Logger } from 'pino'

export type { Logger } from 'pino'

export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'rhpool' },
      redact: {
        paths: [
          'apiKey',
          '*.apiKey',
          'key',
          '*.key',
          'authorization',
          '*.authorization',
          'headers.authorization',
          'webhookSecret',
          '*.webhookSecret',
          'config.accounts',
        ],
        censor: '[redacted]',
      },
    },
    destination
  )
}

export const jobLabel = (jobTable: string, jobId: string): string => `${jobTable}/${jobId}`
