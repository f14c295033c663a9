-- What a deliverable contact really cost. Grain: vendor x client x month x email grade.
-- 6sense grades each purchased contact's email: A+ (under 10% expected bounce), A (10-20%);
-- B ("moderate") and C ("low") have no published rate: we take 20-40% and 40-70%.
-- expected_deliverable_low/high = contacts x (1 - bounce_high) .. contacts x (1 - bounce_low).

CREATE TABLE purchase_quality AS
WITH bands AS (
    SELECT grade, bounce_low::DOUBLE AS bounce_low, bounce_high::DOUBLE AS bounce_high
    FROM (VALUES ('A+', 0.0, 0.10), ('A', 0.10, 0.20), ('B', 0.20, 0.40), ('C', 0.40, 0.70))
        AS t(grade, bounce_low, bounce_high)
)
SELECT
    c.vendor,
    c.client_id,
    date_trunc('month', c.exported_at)::DATE AS month,
    coalesce(c.email_confidence, 'unknown') AS email_confidence,
    count(*) AS contacts,
    sum(c.credits)::BIGINT AS credits,
    any_value(b.bounce_low) AS bounce_low,
    any_value(b.bounce_high) AS bounce_high,
    round(count(*) * (1 - any_value(b.bounce_high)), 1) AS expected_deliverable_low,
    round(count(*) * (1 - any_value(b.bounce_low)), 1) AS expected_deliverable_high,
    round(sum(c.credits) / nullif(count(*) * (1 - any_value(b.bounce_high)), 0), 3)
        AS credits_per_deliverable_worst,
    round(sum(c.credits) / nullif(count(*) * (1 - any_value(b.bounce_low)), 0), 3)
        AS credits_per_deliverable_best
FROM charges c
LEFT JOIN bands b ON b.grade = c.email_confidence
WHERE c.vendor = '6sense' AND c.is_charge
GROUP BY ALL
ORDER BY ALL;
