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
