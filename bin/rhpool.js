#!/usr/bin/env node
// `rhpool` / `npx rhpool`: loads TypeScript through tsx, then the CLI.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/index.ts')
