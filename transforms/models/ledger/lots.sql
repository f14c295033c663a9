-- DOMAIN rule 1. Every credit a client can spend sits in a lot with a half-open window
-- [effective_on, expires_on). Grain: one row per lot. Only lots effective on or before the
-- as-of date exist yet. Reads: cfg_contracts, cfg_allocations, cfg_grants.
-- Lot ids: vendor:client:baseline:YYYY-MM (monthly contracts),
-- vendor:client:baseline:<contract_id> (contracts that do not reset), vendor:client:kind:<grant_id>.

CREATE TABLE lots AS
WITH monthly_contract_months AS (
    -- Months a monthly-reset contract covers, up to the as-of month.
    SELECT
        c.vendor,
        c.contract_id,
        m.month,
        greatest(m.month, c.starts_on) AS opens,
        least(m.month + INTERVAL 1 MONTH, c.ends_on)::DATE AS closes
    FROM cfg_contracts c,
    LATERAL (
        SELECT unnest(generate_series(
            date_trunc('month', c.starts_on),
            least(date_trunc('month', getvariable('as_of')), c.ends_on - INTERVAL 1 DAY),
            INTERVAL 1 MONTH
        ))::DATE AS month
    ) m
    WHERE c.reset = 'monthly'
),
baseline AS (
    -- The allocation in force in a month is the latest row effective on or before it.
    SELECT
        cm.vendor,
        a.client_id,
        format('{}:{}:baseline:{}', cm.vendor, a.client_id, strftime(cm.month, '%Y-%m')) AS lot_id,
        'baseline' AS kind,
        a.monthly_credits AS credits,
        cm.opens AS effective_on,
        cm.closes AS expires_on,
        cm.contract_id AS source_ref,
        a.file_id,
        a.row_number
    FROM monthly_contract_months cm
    JOIN (SELECT DISTINCT vendor, client_id FROM cfg_allocations) clients USING (vendor)
    ASOF JOIN cfg_allocations a
      ON a.vendor = cm.vendor AND a.client_id = clients.client_id
     AND a.effective_month <= cm.month
    WHERE a.monthly_credits > 0 AND cm.opens <= getvariable('as_of')
),
contract_periods AS (
    -- A contract that does not reset (reset = none): one lot per client for the whole
    -- period, holding the allocation in force when the client's lot opens. Credits change
    -- inside the period through grants, not through a new allocation row.
    SELECT c.vendor, c.contract_id, a.client_id, c.ends_on,
           greatest(c.starts_on, min(a.effective_month)) AS opens
    FROM cfg_contracts c
    JOIN cfg_allocations a ON a.vendor = c.vendor AND a.effective_month < c.ends_on
    WHERE c.reset = 'none'
    GROUP BY c.vendor, c.contract_id, a.client_id, c.ends_on, c.starts_on
),
contract_pool AS (
    SELECT
        p.vendor,
        p.client_id,
        format('{}:{}:baseline:{}', p.vendor, p.client_id, p.contract_id) AS lot_id,
        'baseline' AS kind,
        a.monthly_credits AS credits,
        p.opens AS effective_on,
        p.ends_on AS expires_on,
        p.contract_id AS source_ref,
        a.file_id,
        a.row_number
    FROM contract_periods p
    ASOF JOIN cfg_allocations a
      ON a.vendor = p.vendor AND a.client_id = p.client_id AND a.effective_month <= p.opens
    WHERE a.monthly_credits > 0 AND p.opens <= getvariable('as_of')
),
granted AS (
    -- A gift is for its month only unless expires_on says otherwise; it never changes the
    -- baseline. Purchased and earned credits last 12 months.
    SELECT
        g.vendor,
        g.client_id,
        format('{}:{}:{}:{}', g.vendor, g.client_id, g.kind, g.grant_id) AS lot_id,
        g.kind,
        g.credits,
        g.effective_on,
        coalesce(g.expires_on, CASE
            WHEN g.kind IN ('purchase', 'earned') THEN g.effective_on + INTERVAL 12 MONTH
            ELSE date_trunc('month', g.effective_on) + INTERVAL 1 MONTH
        END)::DATE AS expires_on,
        g.grant_id AS source_ref,
        g.file_id,
        g.row_number
    FROM cfg_grants g
    WHERE g.effective_on <= getvariable('as_of')
)
SELECT * FROM baseline
UNION ALL
SELECT * FROM contract_pool
UNION ALL
SELECT * FROM granted;
