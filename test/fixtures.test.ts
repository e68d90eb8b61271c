// The RunningHub samples exist twice: quoted in docs/runninghub-samples.md for
// readers, and as files in test/fixtures/runninghub/ for tests. They are
// verbatim facts, so the two copies must never drift apart, and a fixture that
// claims to be JSON must be JSON.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectRoot } from '../src/db/migrate.ts'

const fixtureDir = join(projectRoot, 'test', 'fixtures', 'runninghub')
const samplesPage = readFileSync(join(projectRoot, 'docs', 'runninghub-samples.md'), 'utf8')
const pageLines = new Set(samplesPage.split('\n'))
const fixtures = readdirSync(fixtureDir)
  .filter((name) => /^\d{2}-.+\.(json|txt)$/.test(name))
  .sort()

/** A fixture's sample: the file without the one newline every fixture ends with (see the README there). */
function sampleText(name: string): string {
  const text = readFileSync(join(fixtureDir, name), 'utf8')
  if (!text.endsWith('\n') || text.endsWith('\n\n')) throw new Error(`${name} must end with exactly one newline`)
  return text.slice(0, -1)
}

t.test('one fixture per sample on the page, numbered in order', async (t) => {
  const sampleCount = [...samplesPage.matchAll(/^## \d+\. /gm)].length
  t.ok(sampleCount >= 10, `${sampleCount} samples on the page`)
  t.same(
    fixtures.map((name) => Number(name.slice(0, 2))),
    Array.from({ length: sampleCount }, (_, i) => i + 1)
  )
})

for (const name of fixtures) {
  t.test(name, async (t) => {
    const text = sampleText(name)
    t.notMatch(text, /\n/, 'one line')
    t.ok(pageLines.has(text), 'appears verbatim, as a whole line, in docs/runninghub-samples.md')
    t.ok(samplesPage.includes(`test/fixtures/runninghub/${name}`), 'and the page names the file')
    if (name.endsWith('.json')) t.doesNotThrow(() => JSON.parse(text), 'parses as JSON')
    else t.throws(() => JSON.parse(text), 'the truncated sample is not JSON, which is why it is .txt')
  })
}
