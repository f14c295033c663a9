-- What each user exported, and what it cost, day by day. Grain: vendor x user x client x
-- day. Small (users x days) and additive, so a night that adds records adds to it
-- (transforms/incremental.py) instead of summing every record again; vendor_reconciliation
-- reads it rather than the records.

CREATE TABLE daily_charges AS
SELECT
    vendor,
    user,
    client_id,
    exported_at::DATE AS day,
    count(*) AS records,
    count(*) FILTER (WHERE is_charge) AS charged_records,
    sum(credits)::BIGINT AS credits
FROM charges
GROUP BY ALL
ORDER BY ALL;
