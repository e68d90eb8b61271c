// The README cannot rot: every command it names is run or resolved, every
// variable in its configuration table is one the code reads (and the other
// way round), and its SQL interface runs against a real database.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { projectRoot } from '../src/db/migrate.ts'
import { freshDatabase } from './helpers/db.ts'
import { rhpool } from './helpers/cli.ts'
import { setAccounts } from './helpers/jobs.ts'

const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8')
const packageJson = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

t.test('every npm script the README names exists', async (t) => {
  const named = new Set([...readme.matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1]!))
  for (const plain of ['start', 'test']) if (readme.includes(`npm ${plain}`)) named.add(plain)
  t.ok(named.size >= 4, `${[...named].join(', ')}`)
  for (const script of named) t.ok(packageJson.scripts[script], `npm run ${script} exists`)
})

t.test('every rhpool command the README names answers --help', async (t) => {
  const named = new Set([...readme.matchAll(/rhpool (migrate|start|demo|status|accounts|jobs|cancel|simulate)\b/g)].map((m) => m[1]!))
  for (const command of ['status', 'accounts', 'jobs', 'cancel', 'migrate', 'start', 'dev', 'demo', 'simulate'])
    if (readme.includes(`\`${command}`)) named.add(command)
  for (const command of named) {
    if (command === 'simulate') continue // its --help belongs to the simulator; tested in cli.test.ts
    t.equal((await rhpool([command, '--help'])).code, 0, `rhpool ${command} --help`)
  }
})

t.test('the install script the README runs succeeds here (and does nothing when all is installed)', async (t) => {
  const out = execFileSync('bash', [join(projectRoot, 'scripts', 'install-system-deps')], { encoding: 'utf8' })
  t.notMatch(out, /installing/, 'nothing left to install on this machine')
})

t.test('the configuration table and the code name the same variables', async (t) => {
  const table = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('### Add an account'))
  const documented = new Set([...table.matchAll(/`([A-Z][A-Z0-9_]+)(?:_<n>)?`/g)].map((m) => m[1]!))
  const code = ['src/config/index.ts', 'src/config/accounts.ts', 'src/localdb/embedded.ts', 'src/run-service.ts']
    .map((f) => readFileSync(join(projectRoot, f), 'utf8'))
    .join('\n')
  const read = new Set(
    [
      ...code.matchAll(
        /\b(RHPOOL_[A-Z_]+|RUNNINGHUB_[A-Z_]+|DATABASE_URL|PUBLIC_BASE_URL|WEBHOOK_SECRET|ADMIN_HOST|ADMIN_PORT|HOST|PORT|LOG_LEVEL)\b/g
      ),
    ].map((m) => m[1]!.replace(/_$/, ''))
  )
  for (const variable of documented) t.ok(read.has(variable), `${variable} (documented) is read by the code`)
  for (const variable of read) {
    if (['RUNNINGHUB_API_KEY_', 'RHPOOL_'].includes(variable)) continue
    t.ok(documented.has(variable), `${variable} (read by the code) is documented`)
  }
})

t.test("the README's SQL interface runs as written", async (t) => {
  const { sql } = await freshDatabase(t)
  await setAccounts(sql, [{ name: 'primary', slots: 3 }])
  const block = readme.slice(readme.indexOf('## The SQL interface'))
  const code = /```sql\n([\s\S]*?)```/.exec(block)![1]!
  const statements = code
    .split('\n')
    .filter((line) => line.trim() && !line.trim().startsWith('--'))
    .map((line) => line.replace(/\s+--.*$/, '').trim())
  t.ok(statements.length >= 9, `${statements.length} statements`)
  let jobId = ''
  let eventId = ''
  for (const statement of statements) {
    const text = statement.replace(/;$/, '')
    const parameter = text.includes('mark_event_processed')
      ? eventId
      : text.includes('user_id')
        ? '6f0b6f3e-3c39-4b8e-9b7e-000000000001'
        : jobId
    const rows = await sql.unsafe(text, text.includes('$1') ? [parameter] : [])
    if (text.startsWith('insert into upscaler_jobs')) jobId = rows[0]!.id as string
    if (text.startsWith('select rhpool.cancel_job')) {
      t.same(rows[0], { cancel_job: 'cancelled' }, 'the job is cancelled')
    }
    if (text.startsWith('select * from rhpool.unprocessed_events')) eventId = String(rows[0]!.id)
    if (text.startsWith('select rhpool.mark_event_processed')) t.same(rows[0], { mark_event_processed: true }, 'marked processed')
    t.pass(text.slice(0, 70))
  }
  const [event] = await sql`select processed_at from rhpool.job_events where id = ${eventId}`
  t.ok(event!.processed_at, 'the terminal event was marked processed')
})
