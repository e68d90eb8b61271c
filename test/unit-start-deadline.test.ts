// A start that never settles (a first query lost with its connection) fails with a
// message naming the deadline, instead of the process exiting silently.
import t from 'tap'
import { withinDeadline } from '../src/run-service.ts'

t.test('a promise that never settles is refused at the deadline, naming it', async (t) => {
  await t.rejects(withinDeadline(new Promise(() => {}), 50, 'the start'), {
    message: /^the start did not finish within 0.05 s \(is the database reachable/,
  })
})

t.test('a start that settles in time passes through, value or error', async (t) => {
  t.equal(await withinDeadline(Promise.resolve(7), 5_000, 'the start'), 7)
  await t.rejects(withinDeadline(Promise.reject(new Error('connect ECONNREFUSED')), 5_000, 'the start'), {
    message: 'connect ECONNREFUSED',
  })
})
