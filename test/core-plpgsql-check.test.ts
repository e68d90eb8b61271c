// Every PL/pgSQL function rhpool ships passes plpgsql_check, extra and
// performance warnings included.
import t from 'tap'
import { freshDatabase } from './helpers/db.ts'

t.test('plpgsql_check finds nothing', async (t) => {
  const { sql } = await freshDatabase(t)
  await sql`create extension if not exists plpgsql_check`
  const findings = await sql`
    select p.oid::regprocedure::text as function, c.lineno, c.level, c.message
    from pg_proc p
    cross join lateral plpgsql_check_function_tb(
      p.oid,
      coalesce(case when p.prorettype = 'trigger'::regtype
                    then (select tg.tgrelid from pg_trigger tg where tg.tgfoid = p.oid limit 1) end, 0),
      extra_warnings => true, performance_warnings => true) c
    where p.pronamespace = 'rhpool'::regnamespace
      and p.prolang = (select oid from pg_language where lanname = 'plpgsql')`
  const [{ n }] =
    (await sql`select count(*)::int as n from pg_proc where pronamespace = 'rhpool'::regnamespace and prolang = (select oid from pg_language where lanname = 'plpgsql')`) as unknown as [
      { n: number },
    ]
  t.ok(n >= 10, `${n} PL/pgSQL functions checked`)
  t.same(findings, [], 'no errors or warnings')
})
