// Preload (`node --import=./test/helpers/record-modules.mjs …`): every module URL the process
// resolves or loads is appended, one a line, to the file named by RHPOOL_MODULE_LOG. Plain
// JavaScript, so it needs no TypeScript loader in the hooks thread. Used by start-imports.test.ts.
import { register } from 'node:module'

const log = process.env.RHPOOL_MODULE_LOG
if (!log) throw new Error('record-modules.mjs: set RHPOOL_MODULE_LOG to the file that receives the module list')
register('./record-modules-hooks.mjs', import.meta.url, { data: { log } })
