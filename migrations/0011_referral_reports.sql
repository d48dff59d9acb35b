-- The referral report (GET /v1/reports/referrals) reads commissions by the day they were earned, with what
-- refunds and disputes have taken back of each. The ledger stays the truth: reversed_amount is what its
-- reversal and clawback entries add up to (negated), kept by a trigger in the statement that appends them, so
-- the report reads one row per commission instead of summing its entries.
alter table commissions add column reversed_amount bigint not null default 0;

update commissions c
   set reversed_amount = -e.total
  from (select commission_id, sum(amount) as total from commission_entries
         where type in ('reversal', 'clawback') group by commission_id) e
 where e.commission_id = c.id;

create function commission_entries_keep_reversed() returns trigger language plpgsql as $$
begin
  update commissions set reversed_amount = reversed_amount - new.amount where id = new.commission_id;
  return null;
end $$;
create trigger commission_entries_keep_reversed after insert on commission_entries
  for each row when (new.type in ('reversal', 'clawback'))
  execute function commission_entries_keep_reversed();

-- An affiliate's report: its commissions of a window, read from the index alone; the admin's: every
-- affiliate's commissions of a window. The clicks of a window, for the admin (an affiliate's use
-- referral_clicks_affiliate_idx).
create index commissions_report_affiliate_idx on commissions (affiliate_id, created_at)
  include (currency, status, base_amount, amount, reversed_amount);
create index commissions_report_window_idx on commissions (created_at)
  include (affiliate_id, currency, status, base_amount, amount, reversed_amount);
create index referral_clicks_at_idx on referral_clicks (at) include (affiliate_id);
