-- Contacts bought and credits charged per email grade, for the vendors whose adapter grades
-- each record's email (email_confidence; 'unknown' for a record it left ungraded). Grain:
-- vendor x client x month x email grade (purchase_quality adds what they are worth).
-- Additive: an incremental night adds the published counts to its own as rows, summed by
-- purchase_quality.

CREATE TABLE purchase_counts AS
SELECT
    vendor,
    client_id,
    date_trunc('month', exported_at)::DATE AS month,
    email_confidence,
    count(*) AS contacts,
    sum(credits) AS credits
FROM charges
WHERE email_confidence IS NOT NULL AND is_charge
GROUP BY ALL;
