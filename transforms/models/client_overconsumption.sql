-- DOMAIN rule 6. Grain of client_overconsumption: vendor x client x month.
--   allocation: the client's own credits for the month (available_credits);
--   used: credits charged less credits given back by reversals (to a lot or off the
--   overage) in the month: a credit refunded is no longer used, whatever it then pays for;
--   over: charged beyond the client's own lots (overage, less overage given back);
--   share_of_pool_use: the client's part of all the vendor's net use that month;
--   over_value: over x the contract's price_per_credit.
-- Grain of pool_overconsumption: vendor x contract x month (for a contract that does not
-- reset, month runs to date: the period so far).

CREATE TABLE client_overconsumption AS
WITH priced AS (
    SELECT b.*, k.contract_id, k.price_per_credit,
           b.charged_credits - b.reversed_credits - b.overage_reversed_credits AS net_used
    FROM monthly_balances b
    LEFT JOIN cfg_contracts k
      ON k.vendor = b.vendor AND b.month >= date_trunc('month', k.starts_on) AND b.month < k.ends_on
)
SELECT
    vendor,
    client_id,
    month,
    available_credits AS allocation,
    net_used::BIGINT AS used,
    greatest(overage_credits - overage_reversed_credits, 0)::BIGINT AS over,
    round(net_used / nullif(sum(net_used) OVER (PARTITION BY vendor, month), 0), 4)
        AS share_of_pool_use,
    round(greatest(overage_credits - overage_reversed_credits, 0) * price_per_credit, 2)
        AS over_value,
    contract_id
FROM priced
ORDER BY vendor, month, client_id;

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
