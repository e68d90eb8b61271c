// The per-source token bucket in front of the webhook's database work.
import t from 'tap'
import { SourceLimit } from '../src/webhook/source-limit.ts'

t.test('N at once per source, refilled at N a minute, sources apart', async (t) => {
  let now = 0
  const limit = new SourceLimit({ perMinute: 3, now: () => now })
  t.same(
    [1, 2, 3, 4].map(() => limit.take('a')),
    [true, true, true, false],
    'three, then refused'
  )
  t.ok(limit.take('b'), 'another source has its own bucket')
  t.equal(limit.retryAfterSeconds('a'), 20, 'one token back in 20 s')
  now += 20_000
  t.same([limit.take('a'), limit.take('a')], [true, false], 'one token after 20 s')
})

t.test('memory is bounded: past maxSources, refilled sources are forgotten, else newcomers share one bucket', async (t) => {
  let now = 0
  const limit = new SourceLimit({ perMinute: 2, maxSources: 100, now: () => now })
  for (let i = 0; i < 10_000; i++) limit.take(`10.0.${i >> 8}.${i & 255}`)
  t.ok(limit.size <= 101, `${limit.size} buckets for 10000 sources`)
  t.notOk(limit.take('192.0.2.1') && limit.take('192.0.2.1') && limit.take('192.0.2.1'), 'a newcomer in a flood shares the spent bucket')
  now += 120_000
  limit.take('192.0.2.2')
  t.ok(limit.size <= 101, 'refilled buckets were forgotten')
  t.same(
    [limit.take('192.0.2.3'), limit.take('192.0.2.3'), limit.take('192.0.2.3')],
    [true, true, false],
    'and a new source gets its own again'
  )
})
