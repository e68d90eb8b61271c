// The one timer of every periodic task (queue fold, heartbeat, maintenance,
// settings refresh): one run at a time, a tick during a run skipped, nothing
// after stop(), errors reported and survived.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Periodic } from '../src/periodic.ts'

// Periodic's timer is unref'd (the point of the last test), so while a test waits for a tick
// something else must keep the event loop running.
const keepAlive = setInterval(() => {}, 60_000)
t.teardown(() => clearInterval(keepAlive))

/** A promise and its resolve, to hold a run open until the test lets it end. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { opened, open }
}

/** Resolves when `count` has reached n, checking after each run starts. */
function counter() {
  let count = 0
  const waiting: Array<{ n: number; resolve(): void }> = []
  return {
    get count() {
      return count
    },
    bump() {
      count++
      for (const w of waiting.filter((w) => count >= w.n)) w.resolve()
    },
    reached(n: number): Promise<void> {
      return count >= n ? Promise.resolve() : new Promise((resolve) => waiting.push({ n, resolve }))
    },
  }
}

t.test('a tick while a run is under way is skipped, not queued', async (t) => {
  const runs = counter()
  const hold = gate()
  const periodic = new Periodic(async () => {
    runs.bump()
    await hold.opened
  }, 1)
  periodic.start()
  await runs.reached(1)
  // Many ticks pass while the first run is held open (each tick is a timer turn; wait for several).
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(runs.count, 1, 'no second run started while the first was under way')
  t.equal(periodic.runNow(), periodic.runNow(), 'runNow during a run answers the run under way')
  hold.open()
  await runs.reached(2)
  t.pass('the next tick after the run ended starts the next run')
  await periodic.stop()
})

t.test('stop() waits for the run under way, and nothing runs after it', async (t) => {
  const runs = counter()
  const hold = gate()
  let ended = false
  const periodic = new Periodic(async () => {
    runs.bump()
    await hold.opened
    ended = true
  }, 1)
  periodic.start()
  await runs.reached(1)
  const stopped = periodic.stop()
  let stopReturned = false
  void stopped.then(() => (stopReturned = true))
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(stopReturned, 'stop() has not returned while a run is under way')
  hold.open()
  await stopped
  t.ok(ended, 'stop() returned after the run ended')
  await periodic.runNow()
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
  t.equal(runs.count, 1, 'no run after stop(), from the timer or runNow')
})

t.test('a run that throws is reported and the next one runs', async (t) => {
  const runs = counter()
  const errors: string[] = []
  const periodic = new Periodic(
    async () => {
      runs.bump()
      if (runs.count === 1) throw new Error('database gone')
    },
    1,
    (error) => errors.push(error.message)
  )
  periodic.start()
  await runs.reached(2)
  await periodic.stop()
  t.same(errors, ['database gone'])
})

t.test('runNow runs without start(), and an interval that is not a positive number is refused by name', async (t) => {
  let ran = 0
  const periodic = new Periodic(async () => void ran++, 60_000)
  await periodic.runNow()
  t.equal(ran, 1)
  await periodic.stop()
  for (const bad of [0, -5, Number.NaN])
    t.throws(() => new Periodic(async () => {}, bad), { name: 'RangeError', message: /intervalMs must be a number > 0/ })
})

t.test('the timer does not keep the process alive', async (t) => {
  // A process whose only work left is a started Periodic (an hour's interval) exits by itself.
  const script = `import { Periodic } from ${JSON.stringify(new URL('../src/periodic.ts', import.meta.url).href)}
new Periodic(async () => {}, 3_600_000).start()`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' })
  const [code] = (await once(child, 'exit')) as [number]
  t.equal(code, 0, 'exited on its own, timer still started')
})
