// What dead dispatchers cost a claim. A stopped or killed dispatcher stays in
// rhpool.dispatchers for an hour, and every restart is a new holder, so a pool
// that restarts often (a deploy loop, a crash loop, the chaos soak) carries
// hundreds. A claim asks, for every account it looks at, which live dispatcher
// holds its key (live_key_holders). This measures one claim (claim_account_slot
// of one slot, then release_to_queue) on one connection, with 0, 100 and 1,000
// dead holders that declared every account, at 1 and 100 accounts.
import { accountName, connect, fillQueueTo, prepareDatabase, useAccounts } from './lib/bench-database.ts'
import { readCommandLine, wholeNumber, wholeNumbers } from './lib/command-line.ts'
import { loadAverage, printHeader } from './lib/machine.ts'
import { fixed, formatTable, whole } from './lib/text-table.ts'
import { withThrowawayCluster } from './lib/throwaway-cluster.ts'

const usage = `Usage: npx tsx bench/dead-dispatchers.ts [options]

  --dead N,N,...      dead dispatchers (each declared every account) per case (default 0,100,1000)
  --accounts N,N,...  accounts per case (default 1,100)
  --claims N          claims measured per case (default 2000)
  --help              this text`

const options = readCommandLine({
  script: 'bench/dead-dispatchers.ts',
  usage,
  options: {
    dead: { type: 'string', default: '0,100,1000' },
    accounts: { type: 'string', default: '1,100' },
    claims: { type: 'string', default: '2000' },
  },
  read: (values) => ({
    dead: wholeNumbers('dead', values.dead, 0),
    accounts: wholeNumbers('accounts', values.accounts),
    claims: wholeNumber('claims', values.claims),
  }),
})

async function main(): Promise<void> {
  printHeader('rhpool: claim cost with dead dispatchers', `npx tsx bench/dead-dispatchers.ts ${process.argv.slice(2).join(' ')}`.trimEnd())
  await withThrowawayCluster('dead-dispatchers', async (cluster) => {
    const url = await cluster.createDatabase('rhpool_dead_dispatchers')
    await prepareDatabase(url)
    await fillQueueTo(url, 10_000)
    const sql = connect(url)
    const rows: string[][] = []
    try {
      for (const accounts of options.accounts) {
        await useAccounts(sql, accounts, 1)
        await sql`delete from rhpool.dispatchers where holder like 'dead-%'`
        let deadSoFar = 0
        for (const dead of [...options.dead].sort((a, b) => a - b)) {
          // Dead holders, an hour's worth at most (older ones are pruned), each with a key for every account.
          await sql`
            with added as (
              insert into rhpool.dispatchers (holder, started_at, heartbeat_at, live_until)
              select 'dead-' || i, now() - interval '50 minutes', now() - interval '50 minutes', now() - interval '49 minutes'
              from generate_series(${deadSoFar + 1}::int, ${dead}::int) i
              returning holder)
            insert into rhpool.dispatcher_keys (holder, account, key_fingerprint, slots)
            select a.holder, 'bench_' || lpad(n::text, 3, '0'), 'fp_' || n, 1
            from added a cross join generate_series(1, ${accounts}::int) n`
          deadSoFar = Math.max(deadSoFar, dead)
          await sql`analyze rhpool.dispatchers, rhpool.dispatcher_keys`
          const claimOnce = async (): Promise<void> => {
            await sql.begin(async (tx) => {
              const [claim] = await tx`select * from rhpool.claim_account_slot(1, 'bench', 60)`
              if (!claim) throw new Error(`no claim at ${accounts} accounts (${accountName(1)} …): is the pool saturated?`)
              await tx`select rhpool.release_to_queue(${claim.job_table}, ${claim.job_id}, ${claim.claim_token}, 'bench')`
            })
          }
          for (let i = 0; i < 100; i++) await claimOnce()
          const started = performance.now()
          for (let i = 0; i < options.claims; i++) await claimOnce()
          const ms = (performance.now() - started) / options.claims
          rows.push([whole(accounts), whole(dead), fixed(ms, 3)])
          console.log(`  ${accounts} accounts, ${dead} dead dispatchers: ${fixed(ms, 3)} ms per claim and release`)
        }
      }
    } finally {
      await sql.end({ timeout: 5 })
    }
    console.log(
      `\n${formatTable([{ header: 'accounts' }, { header: 'dead dispatchers', align: 'right' }, { header: 'ms per claim + release', align: 'right' }], rows)}`
    )
    console.log(`\nload average at the end: ${loadAverage()}`)
  })
}

await main()
