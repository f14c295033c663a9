-- Any client's balance at any instant, from the ledger (DOMAIN rule 9 at a point in time):
--   SELECT * FROM client_balance_at(TIMESTAMP '2025-10-15 12:00');
--   SELECT * FROM balance_at(TIMESTAMP '2025-10-15 12:00') WHERE client_id = 'bluepoint';
-- A lot counts while open: effective_on <= t < expires_on; movements at t are included.
-- Instants after the run's as-of date show what is known so far.

CREATE MACRO balance_at(at_time) AS TABLE
SELECT
    l.vendor,
    l.client_id,
    l.lot_id,
    l.lot_kind,
    l.effective_on,
    l.expires_on,
    sum(e.balance_effect)::BIGINT AS credits_left
FROM credit_lots l
JOIN ledger_entries e ON e.lot_id = l.lot_id AND e.effective_at <= at_time::TIMESTAMP
WHERE l.effective_on::TIMESTAMP <= at_time::TIMESTAMP
  AND l.expires_on::TIMESTAMP > at_time::TIMESTAMP
GROUP BY ALL;

CREATE MACRO client_balance_at(at_time) AS TABLE
SELECT vendor, client_id, sum(credits_left)::BIGINT AS credits_left, count(*) AS open_lots
FROM balance_at(at_time)
GROUP BY ALL
ORDER BY ALL;
