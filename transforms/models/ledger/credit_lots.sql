-- Every lot with what happened to it. Grain: one row per lot.
CREATE TABLE credit_lots AS
SELECT
    l.vendor,
    l.client_id,
    l.lot_id,
    l.kind AS lot_kind,
    l.credits,
    l.effective_on,
    l.expires_on,
    coalesce(-sum(e.balance_effect) FILTER (WHERE e.entry_type = 'consume'), 0)::BIGINT AS consumed_credits,
    coalesce(sum(e.balance_effect) FILTER (WHERE e.entry_type = 'reverse'), 0)::BIGINT AS reversed_credits,
    coalesce(-sum(e.balance_effect) FILTER (WHERE e.entry_type = 'forfeit'), 0)::BIGINT AS forfeited_credits,
    coalesce(sum(e.balance_effect), 0)::BIGINT AS credits_left,
    CASE WHEN l.expires_on <= getvariable('as_of') THEN 'expired' ELSE 'open' END AS status,
    l.source_ref
FROM lots l
LEFT JOIN ledger_entries e ON e.lot_id = l.lot_id
GROUP BY ALL
ORDER BY l.vendor, l.client_id, l.effective_on, l.lot_id;
