-- Early warning for the open month (the month of the as-of date). Grain: vendor x client.
-- Projects the month at the pace so far: used / days elapsed x days in the month.
--   projected_forfeit: credits expiring at the month's end that the pace leaves unused;
--   projected_overage: projected use beyond what the client has;
--   daily_pace_needed: what to use per remaining day to use up the credits expiring at
--   the month's end.

CREATE TABLE pace_forecast AS
WITH params AS (
    SELECT
        date_trunc('month', getvariable('as_of'))::DATE AS month,
        day(getvariable('as_of')) AS days_elapsed,
        day(last_day(getvariable('as_of'))) AS days_in_month
),
expiring AS (
    -- Credits left now in lots that expire at or before the month's end.
    SELECT l.vendor, l.client_id, sum(l.credits_left) AS expiring_credits
    FROM credit_lots l, params p
    WHERE l.status = 'open' AND l.expires_on <= p.month + INTERVAL 1 MONTH
    GROUP BY ALL
)
SELECT
    m.vendor,
    m.client_id,
    p.month,
    getvariable('as_of') AS as_of,
    m.available_credits,
    m.charged_credits AS used_so_far,
    m.closing_balance AS credits_left,
    p.days_elapsed,
    p.days_in_month,
    round(m.charged_credits / p.days_elapsed * p.days_in_month)::BIGINT AS projected_use,
    greatest(coalesce(e.expiring_credits, 0)
             - round(m.charged_credits / p.days_elapsed * (p.days_in_month - p.days_elapsed)), 0)::BIGINT
        AS projected_forfeit,
    greatest(round(m.charged_credits / p.days_elapsed * p.days_in_month)
             - m.available_credits, 0)::BIGINT AS projected_overage,
    CASE WHEN p.days_in_month > p.days_elapsed
         THEN round(coalesce(e.expiring_credits, 0) / (p.days_in_month - p.days_elapsed), 1)
    END AS daily_pace_needed
FROM monthly_balances m
CROSS JOIN params p
LEFT JOIN expiring e USING (vendor, client_id)
WHERE m.month = p.month
ORDER BY m.vendor, m.client_id;
