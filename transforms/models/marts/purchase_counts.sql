-- Contacts bought and credits charged per 6sense Email Confidence grade. Grain: vendor x
-- client x month x email grade (purchase_quality adds what they are worth). Additive: an
-- incremental night adds the published counts to its own as rows, summed by
-- purchase_quality.

CREATE TABLE purchase_counts AS
SELECT
    vendor,
    client_id,
    date_trunc('month', exported_at)::DATE AS month,
    coalesce(email_confidence, 'unknown') AS email_confidence,
    count(*) AS contacts,
    sum(credits) AS credits
FROM charges
WHERE vendor = '6sense' AND is_charge
GROUP BY ALL;
