-- Alerts before credits are lost or run over, as of the run's date. Grain: alert_id.
-- holding: every condition that holds now, one row per rule, subject, period and level:
--   credits_used        a client's use (net of reversals) reaching a part of its month's credits;
--   projected_forfeit   the month's pace leaves more than the setting to forfeit (pace_forecast);
--   projected_overage   the month's pace runs more than the setting past the client's credits;
--   lot_expiring        a purchased or earned lot with credits left expires within N days;
--   pool_past_contract  the pool's use projected past its pool_credits by the end of its
--   pool_past_cap       period (the month, or the contract for one without reset), at the
--                       month's pace; or past its cap_credits.
-- raised_before: what earlier nights raised (the ingest store's raised_alerts). An alert is
-- raised once per rule, subject and period: a level (50/80/100%, 30/7/1 days) only when it
-- is more severe than every level already raised for them. What was raised stays, as raised.
CREATE TABLE alerts AS
WITH params AS (
    SELECT
        getvariable('as_of')::DATE AS as_of,
        date_trunc('month', getvariable('as_of'))::DATE AS month,
        day(getvariable('as_of')) AS days_elapsed,
        day(last_day(getvariable('as_of'))) AS days_in_month,
        last_day(getvariable('as_of')) AS last_day
),
names AS (SELECT client_id, client_name FROM clients),
used AS (
    SELECT
        'credits_used' AS rule, o.vendor, o.client_id, o.contract_id, NULL::VARCHAR AS lot_id,
        p.month AS period_start, (p.month + INTERVAL 1 MONTH)::DATE AS period_end,
        u.percent::BIGINT AS threshold, 'percent' AS threshold_unit,
        o.allocation AS credits, o.used AS value, f.projected_use AS projected_value,
        greatest(o.used - o.allocation, 0)::BIGINT AS credits_at_risk,
        NULL::DATE AS expires_on,
        format('{} has used {}% of its {} credits for {}: {} of {}{}.',
               n.client_name, round(o.used * 100 / o.allocation)::BIGINT, vendor_name(o.vendor),
               strftime(p.month, '%B %Y'), format('{:,}', o.used), format('{:,}', o.allocation),
               CASE WHEN f.projected_use IS NOT NULL
                    THEN format(', on pace for {:,} by {}', f.projected_use,
                                strftime(p.last_day, '%-d %B')) ELSE '' END) AS message
    FROM client_overconsumption o
    CROSS JOIN params p
    CROSS JOIN (SELECT unnest(getvariable('alert_use_percent')) AS percent) u
    JOIN names n USING (client_id)
    LEFT JOIN pace_forecast f
      ON f.vendor = o.vendor AND f.client_id = o.client_id AND f.month = o.month
    WHERE o.month = p.month AND o.client_id <> 'unassigned' AND o.allocation > 0
      AND o.used * 100 >= u.percent * o.allocation
),
forecast AS (
    SELECT
        'projected_forfeit' AS rule, f.vendor, f.client_id, o.contract_id, NULL AS lot_id,
        f.month AS period_start, (f.month + INTERVAL 1 MONTH)::DATE AS period_end,
        getvariable('alert_forfeit_credits')::BIGINT AS threshold, 'credits' AS threshold_unit,
        f.credits_left AS credits, f.used_so_far AS value, f.projected_use AS projected_value,
        f.projected_forfeit AS credits_at_risk, p.last_day AS expires_on,
        format('{} is on pace to forfeit {} {} credits at the end of {}: {} used in its first '
               '{} days, {} left, {} a day needed to use them.',
               n.client_name, format('{:,}', f.projected_forfeit), vendor_name(f.vendor),
               strftime(f.month, '%B %Y'), format('{:,}', f.used_so_far), f.days_elapsed,
               format('{:,}', f.credits_left), f.daily_pace_needed) AS message
    FROM pace_forecast f
    CROSS JOIN params p
    JOIN names n USING (client_id)
    LEFT JOIN client_overconsumption o
      ON o.vendor = f.vendor AND o.client_id = f.client_id AND o.month = f.month
    WHERE f.client_id <> 'unassigned'
      AND f.projected_forfeit > getvariable('alert_forfeit_credits')
    UNION ALL
    SELECT
        'projected_overage', f.vendor, f.client_id, o.contract_id, NULL,
        f.month, (f.month + INTERVAL 1 MONTH)::DATE,
        getvariable('alert_overage_credits')::BIGINT, 'credits',
        f.available_credits, f.used_so_far, f.projected_use,
        f.projected_overage, NULL::DATE,
        format('{} is on pace to use {} {} credits in {}, {} more than its {}: {} used in its '
               'first {} days.',
               n.client_name, format('{:,}', f.projected_use), vendor_name(f.vendor),
               strftime(f.month, '%B %Y'), format('{:,}', f.projected_overage),
               format('{:,}', f.available_credits), format('{:,}', f.used_so_far),
               f.days_elapsed)
    FROM pace_forecast f
    JOIN names n USING (client_id)
    LEFT JOIN client_overconsumption o
      ON o.vendor = f.vendor AND o.client_id = f.client_id AND o.month = f.month
    WHERE f.client_id <> 'unassigned'
      AND f.projected_overage > getvariable('alert_overage_credits')
),
expiring AS (
    SELECT
        'lot_expiring' AS rule, l.vendor, l.client_id, l.source_ref AS contract_id, l.lot_id,
        l.effective_on AS period_start, l.expires_on AS period_end,
        d.days::BIGINT AS threshold, 'days' AS threshold_unit,
        l.credits, l.credits_left AS value, NULL::BIGINT AS projected_value,
        l.credits_left AS credits_at_risk, l.expires_on,
        format('{}: {} {} credits of its {} lot {} expire in {} {}; the last day to use them '
               'is {}.',
               n.client_name, format('{:,}', l.credits_left), vendor_name(l.vendor),
               CASE l.lot_kind WHEN 'purchase' THEN 'purchased' ELSE 'earned' END, l.source_ref,
               l.expires_on - p.as_of,
               CASE WHEN l.expires_on - p.as_of = 1 THEN 'day' ELSE 'days' END,
               strftime(l.expires_on - 1, '%-d %B %Y')) AS message
    FROM credit_lots l
    CROSS JOIN params p
    CROSS JOIN (SELECT unnest(getvariable('alert_expiry_days')) AS days) d
    JOIN names n USING (client_id)
    WHERE l.lot_kind IN ('purchase', 'earned') AND l.status = 'open' AND l.credits_left > 0
      AND l.effective_on <= p.as_of AND l.expires_on - p.as_of <= d.days
),
pool_use AS (
    -- A pool's use to date, and its period: the month, or the contract when it does not reset.
    SELECT
        k.vendor, k.contract_id, k.reset, k.pool_credits, k.cap_credits, k.starts_on, k.ends_on,
        u.used AS used_to_date,
        coalesce(m.month_used, 0) AS month_used,
        CASE WHEN k.reset = 'monthly' THEN p.month ELSE k.starts_on END AS period_start,
        CASE WHEN k.reset = 'monthly' THEN least(k.ends_on, (p.month + INTERVAL 1 MONTH)::DATE)
             ELSE k.ends_on END AS period_end,
        p.days_elapsed, p.as_of
    FROM cfg_contracts k
    CROSS JOIN params p
    JOIN pool_overconsumption u
      ON u.vendor = k.vendor AND u.contract_id = k.contract_id AND u.month = p.month
    LEFT JOIN (
        SELECT vendor, contract_id, sum(used) AS month_used
        FROM client_overconsumption, params
        WHERE client_overconsumption.month = params.month GROUP BY ALL
    ) m ON m.vendor = k.vendor AND m.contract_id = k.contract_id
    WHERE k.starts_on <= p.as_of AND k.ends_on > p.as_of
),
pool_projected AS (
    SELECT *,
        -- The days left in the period after the as-of day, at the month's pace so far.
        (used_to_date + round(month_used / days_elapsed * (period_end - as_of - 1)))::BIGINT
            AS projected
    FROM pool_use
),
pools AS (
    SELECT
        b.rule, q.vendor, NULL AS client_id, q.contract_id, NULL AS lot_id,
        q.period_start, q.period_end, b.bound AS threshold, 'credits' AS threshold_unit,
        b.bound AS credits, q.used_to_date AS value, q.projected AS projected_value,
        (q.projected - b.bound)::BIGINT AS credits_at_risk, NULL::DATE AS expires_on,
        format('The {} pool {} is on pace to use {} credits by {}, {} past the {} of its {}: {} '
               'used so far.',
               vendor_name(q.vendor), q.contract_id, format('{:,}', q.projected),
               strftime(q.period_end - 1, '%-d %B %Y'), format('{:,}', q.projected - b.bound),
               format('{:,}', b.bound), b.what, format('{:,}', q.used_to_date)) AS message
    FROM pool_projected q,
    LATERAL (
        SELECT 'pool_past_contract' AS rule, q.pool_credits AS bound, 'contract' AS what
        UNION ALL
        SELECT 'pool_past_cap', q.cap_credits, 'cap' WHERE q.cap_credits IS NOT NULL
    ) b
    WHERE q.projected > b.bound
),
holding AS (
    SELECT *,
        concat_ws(':', rule, vendor, coalesce(lot_id, client_id, contract_id), period_start)
            AS series,
        CASE rule WHEN 'credits_used' THEN threshold WHEN 'lot_expiring' THEN -threshold
                  ELSE 0 END AS severity
    FROM (FROM used UNION ALL BY NAME FROM forecast UNION ALL BY NAME FROM expiring
          UNION ALL BY NAME FROM pools)
),
raised AS (
    SELECT *,
        concat_ws(':', rule, vendor, coalesce(lot_id, client_id, contract_id), period_start)
            AS series,
        CASE rule WHEN 'credits_used' THEN threshold WHEN 'lot_expiring' THEN -threshold
                  ELSE 0 END AS severity
    FROM raised_before
),
new AS (
    -- Per series, its most severe level now, unless one as severe was raised before.
    SELECT h.* FROM holding h
    WHERE NOT EXISTS (SELECT 1 FROM raised r WHERE r.series = h.series AND r.severity >= h.severity)
    QUALIFY row_number() OVER (PARTITION BY h.series ORDER BY h.severity DESC) = 1
)
SELECT
    CASE WHEN rule IN ('credits_used', 'lot_expiring') THEN series || ':' || threshold
         ELSE series END AS alert_id,
    rule, vendor, client_id, contract_id, lot_id, period_start, period_end, threshold,
    threshold_unit, credits, value, projected_value, credits_at_risk, expires_on, message,
    (SELECT as_of FROM params) AS first_raised_as_of,
    getvariable('alert_run_at')::TIMESTAMP AS first_raised_at,
    true AS still_holds
FROM new
UNION ALL
SELECT
    r.alert_id, r.rule, r.vendor, r.client_id, r.contract_id, r.lot_id, r.period_start,
    r.period_end, r.threshold, r.threshold_unit, r.credits, r.value, r.projected_value,
    r.credits_at_risk, r.expires_on, r.message, r.first_raised_as_of, r.first_raised_at,
    -- Its condition holds now at this level or a more severe one.
    EXISTS (SELECT 1 FROM holding h WHERE h.series = r.series AND h.severity >= r.severity)
FROM raised r
ORDER BY first_raised_as_of, rule, vendor, alert_id;
