-- DOMAIN rule 4. Grain: vendor x client x lot, for lots that lost credits: at their expiry
-- (expires_on on or before the as-of date), or later when a reversal gave credits back to
-- the expired lot (forfeited at once, counted in the reversal's month).

CREATE TABLE forfeitures AS
SELECT
    e.vendor,
    e.client_id,
    e.lot_id,
    l.kind AS lot_kind,
    l.credits AS lot_credits,
    (l.credits - sum(e.credits) FILTER (WHERE e.entry_id = 'forfeit:' || e.lot_id))::BIGINT AS used_credits,
    sum(e.credits)::BIGINT AS forfeited_credits,
    coalesce(sum(e.credits) FILTER (WHERE e.entry_id <> 'forfeit:' || e.lot_id), 0)::BIGINT
        AS given_back_after_expiry,
    l.effective_on,
    l.expires_on,
    min(e.effective_at) AS forfeited_at,
    date_trunc('month', l.expires_on - INTERVAL 1 DAY)::DATE AS month
FROM ledger_entries e
JOIN lots l USING (lot_id)
WHERE e.entry_type = 'forfeit'
GROUP BY e.vendor, e.client_id, e.lot_id, l.kind, l.credits, l.effective_on, l.expires_on
ORDER BY e.vendor, e.client_id, l.expires_on, e.lot_id;
