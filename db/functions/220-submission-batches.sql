-- The submission steps of many jobs in one transaction. A dispatcher with many
-- submissions in flight sends the steps that became ready while its previous
-- batch was being written as the next batch (src/db/step-batcher.ts): one
-- commit, one round trip, one transaction id for all of them, instead of one
-- each. Each item is the single-job step of 210-submission.sql, unchanged: the
-- same fence (its claim token), the same answer. Items are taken in job order,
-- so two batches that share jobs (a stale worker's and the new holder's) lock
-- them in the same order and cannot deadlock.

create or replace function rhpool.begin_submissions(job_tables text[], job_ids uuid[], claim_tokens bigint[], timeout_seconds integer default 60)
returns table (ord integer, value jsonb)
language plpgsql
volatile
as $$
declare
  item record;
begin
  if cardinality(begin_submissions.job_tables) is distinct from cardinality(begin_submissions.job_ids)
     or cardinality(begin_submissions.job_tables) is distinct from cardinality(begin_submissions.claim_tokens) then
    raise exception 'begin_submissions: job_tables, job_ids and claim_tokens must have one entry per job (got %, % and %)',
      cardinality(begin_submissions.job_tables), cardinality(begin_submissions.job_ids), cardinality(begin_submissions.claim_tokens)
      using errcode = 'invalid_parameter_value';
  end if;
  for item in
    select i.job_table, i.job_id, i.claim_token, i.ord
    from unnest(begin_submissions.job_tables, begin_submissions.job_ids, begin_submissions.claim_tokens)
         with ordinality as i(job_table, job_id, claim_token, ord)
    order by i.job_table, i.job_id, i.ord
  loop
    ord := item.ord::integer;
    value := rhpool.begin_submission(item.job_table, item.job_id, item.claim_token, begin_submissions.timeout_seconds);
    return next;
  end loop;
end
$$;

create or replace function rhpool.record_submissions(job_tables text[], job_ids uuid[], claim_tokens bigint[], task_ids text[])
returns table (ord integer, value text)
language plpgsql
volatile
as $$
declare
  item record;
begin
  if cardinality(record_submissions.job_tables) is distinct from cardinality(record_submissions.job_ids)
     or cardinality(record_submissions.job_tables) is distinct from cardinality(record_submissions.claim_tokens)
     or cardinality(record_submissions.job_tables) is distinct from cardinality(record_submissions.task_ids) then
    raise exception 'record_submissions: job_tables, job_ids, claim_tokens and task_ids must have one entry per job (got %, %, % and %)',
      cardinality(record_submissions.job_tables), cardinality(record_submissions.job_ids),
      cardinality(record_submissions.claim_tokens), cardinality(record_submissions.task_ids)
      using errcode = 'invalid_parameter_value';
  end if;
  for item in
    select i.job_table, i.job_id, i.claim_token, i.task_id, i.ord
    from unnest(record_submissions.job_tables, record_submissions.job_ids, record_submissions.claim_tokens, record_submissions.task_ids)
         with ordinality as i(job_table, job_id, claim_token, task_id, ord)
    order by i.job_table, i.job_id, i.ord
  loop
    ord := item.ord::integer;
    value := rhpool.record_submission(item.job_table, item.job_id, item.claim_token, item.task_id);
    return next;
  end loop;
end
$$;
