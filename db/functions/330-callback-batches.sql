-- Callbacks in batches, as the submission steps are (220-submission-batches.sql):
-- the webhook route writes the callbacks that arrived while its previous batch
-- was being written as the next batch, and a confirmer the answers it got
-- together; each HTTP request is answered once its batch is committed. Each
-- item is the single-callback function, unchanged. Items are taken in job
-- order, the order every batch locks in, so batches cannot deadlock; two
-- deliveries of one job in one batch are taken one after the other, the second
-- seeing the first (a duplicate stays a duplicate).
--
-- A batch that only holds callbacks (receive_claim, hold_callback: rhpool's
-- default, confirmed callbacks) and hands none over changes no job, so none of
-- its callbacks depends on another: it is written by rhpool.hold_claims in one
-- statement, with the outcomes each function would give.

-- handed_to, handed_keys and lease_seconds are hand_over_claim's
-- (310-confirmation.sql): a claim plainly its attempt's is leased to the
-- calling process, and its row answers handed_delivery and handed_account
-- (null for every other outcome).
create or replace function rhpool.take_callbacks(
  functions text[], job_tables text[], job_ids uuid[], attempts integer[], task_ids text[], callbacks jsonb[], bodies text[],
  handed_to text[] default '{}', handed_keys text[] default '{}', lease_seconds numeric default null
)
returns table (ord integer, value text, handed_delivery bigint, handed_account text)
language plpgsql
volatile
as $$
declare
  item record;
  handed record;
  handing boolean := take_callbacks.lease_seconds > 0 and cardinality(take_callbacks.handed_to) > 0;
begin
  perform rhpool.require_one_entry_each('take_callbacks', 'callback',
    array['functions', 'job_tables', 'job_ids', 'attempts', 'task_ids', 'callbacks', 'bodies'],
    array[cardinality(take_callbacks.functions), cardinality(take_callbacks.job_tables), cardinality(take_callbacks.job_ids),
          cardinality(take_callbacks.attempts), cardinality(take_callbacks.task_ids), cardinality(take_callbacks.callbacks),
          cardinality(take_callbacks.bodies)]);
  if not coalesce(handing, false)
     and coalesce((select bool_and(f in ('receive_claim', 'hold_callback')) from unnest(take_callbacks.functions) f), false) then
    return query
      select h.ord, h.value, null::bigint, null::text
      from rhpool.hold_claims(take_callbacks.job_tables, take_callbacks.job_ids, take_callbacks.attempts, take_callbacks.task_ids,
                              take_callbacks.callbacks, take_callbacks.bodies,
                              array(select f = 'receive_claim' from unnest(take_callbacks.functions) with ordinality u(f, n) order by n)) h;
    return;
  end if;
  for item in
    select i.fn, i.job_table, i.job_id, i.attempt, i.task_id, i.callback, i.body, i.ord
    from unnest(take_callbacks.functions, take_callbacks.job_tables, take_callbacks.job_ids, take_callbacks.attempts,
                take_callbacks.task_ids, take_callbacks.callbacks, take_callbacks.bodies)
         with ordinality as i(fn, job_table, job_id, attempt, task_id, callback, body, ord)
    order by i.job_table, i.job_id, i.ord
  loop
    ord := item.ord::integer;
    handed_delivery := null;
    handed_account := null;
    case item.fn
      when 'apply_callback' then
        value := rhpool.apply_callback(item.job_table, item.job_id, item.attempt, item.task_id, item.callback, item.body);
      when 'receive_claim' then
        -- Handed over to the calling process when it can confirm the callback; else held as always.
        if handing then
          handed := rhpool.hand_over_claim(item.job_table, item.job_id, item.attempt, item.task_id, item.callback, item.body,
                                           take_callbacks.handed_to, coalesce(take_callbacks.handed_keys, '{}'), take_callbacks.lease_seconds);
          handed_delivery := handed.handed_delivery;
          handed_account := handed.handed_account;
        end if;
        value := case when handed_delivery is null
                      then rhpool.receive_claim(item.job_table, item.job_id, item.attempt, item.task_id, item.callback, item.body)
                      else 'unconfirmed' end;
      when 'hold_callback' then
        value := rhpool.hold_callback(item.job_table, item.job_id, item.attempt, item.task_id, item.callback, item.body);
      else
        raise exception 'take_callbacks: % is not a callback function (apply_callback, receive_claim or hold_callback)',
          coalesce(quote_literal(item.fn), 'NULL')
          using errcode = 'invalid_parameter_value';
    end case;
    return next;
  end loop;
end
$$;

create or replace function rhpool.confirm_callbacks(delivery_ids bigint[], callbacks jsonb[], retry_seconds numeric)
returns table (ord integer, value text)
language plpgsql
volatile
as $$
declare
  item record;
begin
  if cardinality(confirm_callbacks.delivery_ids) is distinct from cardinality(confirm_callbacks.callbacks) then
    raise exception 'confirm_callbacks: delivery_ids and callbacks must have one entry per delivery (got % and %)',
      cardinality(confirm_callbacks.delivery_ids), cardinality(confirm_callbacks.callbacks)
      using errcode = 'invalid_parameter_value';
  end if;
  for item in
    select i.delivery_id, i.callback, i.ord
    from unnest(confirm_callbacks.delivery_ids, confirm_callbacks.callbacks) with ordinality as i(delivery_id, callback, ord)
    left join rhpool.webhook_deliveries w on w.id = i.delivery_id
    order by w.job_table, w.job_id, i.ord
  loop
    ord := item.ord::integer;
    value := rhpool.confirm_callback(item.delivery_id, item.callback, confirm_callbacks.retry_seconds);
    return next;
  end loop;
end
$$;
