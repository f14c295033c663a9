-- What a deliverable contact really cost. Grain: vendor x client x month x email grade.
-- The grades an adapter gives (email_confidence): A+ (under 10% expected bounce), A (10-20%);
-- B ("moderate") and C ("low") have no published rate: we take 20-40% and 40-70%.
-- expected_deliverable_low/high = contacts x (1 - bounce_high) .. contacts x (1 - bounce_low).
-- Reads: purchase_counts.

CREATE TABLE purchase_quality AS
WITH bands AS (
    SELECT grade, bounce_low::DOUBLE AS bounce_low, bounce_high::DOUBLE AS bounce_high
    FROM (VALUES ('A+', 0.0, 0.10), ('A', 0.10, 0.20), ('B', 0.20, 0.40), ('C', 0.40, 0.70))
        AS t(grade, bounce_low, bounce_high)
),
counts AS (
    SELECT vendor, client_id, month, email_confidence,
           sum(contacts) AS contacts, sum(credits) AS credits
    FROM purchase_counts GROUP BY ALL
)
SELECT
    c.vendor,
    c.client_id,
    c.month,
    c.email_confidence,
    c.contacts::BIGINT AS contacts,
    c.credits::BIGINT AS credits,
    b.bounce_low,
    b.bounce_high,
    round(c.contacts * (1 - b.bounce_high), 1) AS expected_deliverable_low,
    round(c.contacts * (1 - b.bounce_low), 1) AS expected_deliverable_high,
    round(c.credits / nullif(c.contacts * (1 - b.bounce_high), 0), 3)
        AS credits_per_deliverable_worst,
    round(c.credits / nullif(c.contacts * (1 - b.bounce_low), 0), 3)
        AS credits_per_deliverable_best
FROM counts c
LEFT JOIN bands b ON b.grade = c.email_confidence
ORDER BY ALL;
