// `node --import tsx src/main.ts`: one production rhpool process (dispatcher +
// HTTP server), configured from the environment only: no embedded defaults.
import { ConfigError } from './config/index.ts'
import { runService } from './run-service.ts'

runService(process.env).then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(error instanceof ConfigError ? `rhpool: configuration error: ${error.message}\n` : `rhpool: ${error.message}\n`)
    process.exit(error instanceof ConfigError ? 2 : 1)
  }
)
