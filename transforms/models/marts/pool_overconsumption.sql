CREATE TABLE pool_overconsumption AS
WITH months AS (
    SELECT DISTINCT vendor, month FROM monthly_balances
),
per_month AS (
    SELECT
        k.vendor, k.contract_id, k.reset, m.month, k.pool_credits, k.cap_credits,
        k.price_per_credit,
        -- Net of every credit given back, to a lot as well as off the overage: the
        -- vendor counts a refunded credit as unused, even if the client spends it again.
        coalesce(
            sum(b.charged_credits - b.reversed_credits - b.overage_reversed_credits), 0
        ) AS used_in_month,
        coalesce(sum(b.baseline_credits), 0) AS allocated_in_month
    FROM cfg_contracts k
    JOIN months m ON m.vendor = k.vendor
     AND m.month >= date_trunc('month', k.starts_on) AND m.month < k.ends_on
    LEFT JOIN monthly_balances b ON b.vendor = k.vendor AND b.month = m.month
    GROUP BY ALL
),
measured AS (
    SELECT
        *,
        CASE WHEN reset = 'monthly' THEN used_in_month
             ELSE sum(used_in_month) OVER (PARTITION BY vendor, contract_id ORDER BY month)
        END AS used,
        CASE WHEN reset = 'monthly' THEN allocated_in_month
             ELSE sum(allocated_in_month) OVER (PARTITION BY vendor, contract_id ORDER BY month)
        END AS allocated
    FROM per_month
)
SELECT
    vendor,
    contract_id,
    month,
    reset,
    pool_credits,
    cap_credits,
    used::BIGINT AS used,
    greatest(used - pool_credits, 0)::BIGINT AS true_up_credits,
    round(greatest(used - pool_credits, 0) * price_per_credit, 2) AS true_up_value,
    greatest(used - cap_credits, 0)::BIGINT AS beyond_cap_credits,
    allocated::BIGINT AS allocated_to_clients,
    allocated > pool_credits AS allocations_exceed_pool
FROM measured
ORDER BY vendor, contract_id, month;
