-- DOMAIN rule 4. Grain: vendor x client x lot, for lots that expired (expires_on on or
-- before the as-of date) with credits left. Use-it-or-lose-it is the baseline and gift rows.

CREATE TABLE forfeitures AS
SELECT
    e.vendor,
    e.client_id,
    e.lot_id,
    l.kind AS lot_kind,
    l.credits AS lot_credits,
    l.credits - e.credits AS used_credits,
    e.credits AS forfeited_credits,
    l.effective_on,
    l.expires_on,
    e.effective_at AS forfeited_at,
    e.booking_month AS month
FROM ledger_entries e
JOIN lots l USING (lot_id)
WHERE e.entry_type = 'forfeit'
ORDER BY e.vendor, e.client_id, l.expires_on, e.lot_id;
