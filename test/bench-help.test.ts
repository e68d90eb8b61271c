// Every benchmark answers --help with its usage (exit 0) and refuses an argument it
// cannot use by naming it (exit 2), without starting a cluster: bench/README.md
// promises both, and a benchmark is the one thing nobody runs until they need it.
import t from 'tap'
import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../src/db/migrate.ts'

// Each entry point and the options its usage must name.
const benchmarks: Record<string, string[]> = {
  'claim.ts': [
    '--queued',
    '--accounts',
    '--slots',
    '--iterations',
    '--case-seconds',
    '--warmup',
    '--connections',
    '--concurrent-seconds',
    '--concurrent-queued',
    '--concurrent-accounts',
    '--explain-accounts',
    '--apply',
    '--quick',
  ],
  'limits.ts': ['--jobs', '--configured', '--real', '--task-ms', '--queue-status', '--rounds', '--callbacks'],
  'pipeline.ts': ['--quick', '--callbacks'],
  'profile.ts': ['--jobs', '--warmup', '--insert-clients', '--accounts', '--slots', '--top', '--callbacks'],
  'queue-counts.ts': ['--jobs', '--bulk', '--queued', '--rounds'],
  'scale.ts': ['--queued', '--accounts', '--slots', '--claims', '--case-seconds', '--samples', '--callbacks', '--quick'],
  'dead-dispatchers.ts': ['--dead', '--accounts', '--claims'],
  'soak.ts': [
    '--minutes',
    '--jobs-per-minute',
    '--seed',
    '--dispatchers',
    '--webhook-servers',
    '--accounts',
    '--slots',
    '--callbacks',
    '--keep',
    '--quiet',
  ],
  'utilisation.ts': ['--accounts', '--slots', '--jobs', '--scale', '--times', '--strategy', '--callbacks', '--quick'],
  'versus-graphile-worker.ts': [
    '--jobs',
    '--warmup',
    '--modes',
    '--rounds',
    '--gw-concurrency',
    '--gw-variants',
    '--accounts',
    '--slots',
    '--insert-clients',
    '--max-submissions',
    '--callbacks',
    '--quick',
  ],
  'webhook.ts': ['--deliveries', '--duplicates', '--senders', '--callbacks', '--quick'],
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function bench(script: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    // No DATABASE_URL: --help and a refusal must need no database. No timer either: on a busy
    // machine compiling a script takes what it takes; tap's file timeout catches a hang.
    execFile(
      process.execPath,
      ['--import', 'tsx', join('bench', script), ...args],
      {
        cwd: projectRoot,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
        resolve({ code, stdout, stderr })
      }
    )
  })
}

t.test('every entry point in bench/ is listed here', async (t) => {
  const entryPoints = readdirSync(join(projectRoot, 'bench'))
    .filter((name) => name.endsWith('.ts'))
    .sort()
  t.same(entryPoints, Object.keys(benchmarks).sort())
})

for (const [script, options] of Object.entries(benchmarks)) {
  t.test(`bench/${script}`, async (t) => {
    // Both at once: each start compiles the script, and the two do not depend on each other.
    const [help, wrong] = await Promise.all([bench(script, ['--help']), bench(script, ['--no-such-flag'])])
    t.equal(help.code, 0, '--help exits 0')
    t.match(help.stdout, `Usage: npx tsx bench/${script}`)
    for (const option of [...options, '--help']) t.match(help.stdout, new RegExp(`${option}(?![\\w-])`), `usage names ${option}`)
    t.equal(help.stderr, '', 'nothing on stderr')

    t.equal(wrong.code, 2, 'an unknown flag exits 2')
    t.match(wrong.stderr, `bench/${script}: Unknown option '--no-such-flag'`, 'and is named')
    t.equal(wrong.stdout, '', 'nothing ran')
  })
}

t.test('a value out of range is named and exits 2', async (t) => {
  const run = await bench('soak.ts', ['--minutes', '0'])
  t.equal(run.code, 2)
  t.match(run.stderr, 'bench/soak.ts: --minutes must be a number > 0, got "0"')
  t.equal(run.stdout, '')
})

t.test('more soak accounts than test keys is named and exits 2', async (t) => {
  const run = await bench('soak.ts', ['--accounts', '9'])
  t.equal(run.code, 2)
  t.match(run.stderr, 'bench/soak.ts: --accounts 9: at most 4')
  t.equal(run.stdout, '')
})

t.test('a duplicate share out of range is named and exits 2', async (t) => {
  const run = await bench('webhook.ts', ['--duplicates', '0.7'])
  t.equal(run.code, 2)
  t.match(run.stderr, 'bench/webhook.ts: --duplicates 0.7: a share from 0 to 0.5')
  t.equal(run.stdout, '')
})
