-- What each client owes the agency for a month (docs/rules.md, "Money"). Grain: client x
-- month x line_no (lines numbered per client and month, in vendor order). A line is:
--   overage           credits used beyond the client's own lots (client_overconsumption.over),
--                     at the contract's price_per_credit, plus the policy's markup;
--   overage_included  under policy `included`, the first included_credits of a month's
--                     overage (per vendor): on the invoice at 0.00, so the client sees them;
--   purchase          a purchased block (a purchase grant), in the month its lot opens, at
--                     the grant's own price_per_credit or else the contract's, plus markup.
-- amount = credits x unit_price x (1 + markup_percent / 100), computed in decimals and
-- rounded half up (away from zero) to cents, once per line. Only clients with a row in
-- config/billing.csv are billed (cfg_billing); a credit no contract covers has no price.
-- A closed month's lines are the ones frozen at its close (frozen_invoice_lines, rule 8),
-- whatever the configuration says now; what came late is in the first open month's lines.
-- Reads: client_overconsumption, ledger_entries, lots, cfg_billing, cfg_contracts,
-- cfg_grants, invoice_closed_months, frozen_invoice_lines.

CREATE TABLE invoice_lines AS
WITH accounts AS (
    SELECT DISTINCT vendor, client_id FROM client_overconsumption
    UNION
    SELECT DISTINCT vendor, client_id FROM ledger_entries WHERE lot_kind = 'purchase'
),
billed AS (
    -- The client's row for the vendor, else its row for every vendor.
    -- (an unmatched LEFT JOIN row is a struct of NULLs, not NULL: test the key)
    SELECT a.vendor, a.client_id,
           CASE WHEN own.client_id IS NOT NULL THEN own ELSE every END AS p
    FROM accounts a
    LEFT JOIN cfg_billing own ON own.client_id = a.client_id AND own.vendor = a.vendor
    LEFT JOIN cfg_billing every ON every.client_id = a.client_id AND every.vendor IS NULL
    WHERE own.client_id IS NOT NULL OR every.client_id IS NOT NULL
),
policies AS (
    SELECT vendor, client_id, p.policy,
           -- at_cost never marks up; included may (beyond its cap), cost_plus always does
           CASE WHEN p.policy <> 'at_cost' THEN p.markup_percent::DECIMAL(9, 4) END
               AS markup_percent,
           p.included_credits
    FROM billed
),
overage AS (
    SELECT o.vendor, o.client_id, o.month, o.over, k.price_per_credit::DECIMAL(12, 4) AS price,
           p.policy, p.markup_percent, p.included_credits
    FROM client_overconsumption o
    JOIN policies p USING (vendor, client_id)
    JOIN cfg_contracts k ON k.vendor = o.vendor AND k.contract_id = o.contract_id
    WHERE o.over > 0 AND k.price_per_credit IS NOT NULL
),
purchases AS (
    -- Grant entries of purchased lots by the month they are booked in: a block granted for
    -- a month already closed is booked (late) in the first open month, and billed there.
    SELECT e.vendor, e.client_id, e.booking_month AS month, e.lot_id, e.late_for_month,
           sum(e.credits)::BIGINT AS credits,
           any_value(l.source_ref) AS grant_id, any_value(l.effective_on) AS opens
    FROM ledger_entries e
    LEFT JOIN lots l ON l.lot_id = e.lot_id
    WHERE e.entry_type = 'grant' AND e.lot_kind = 'purchase'
    GROUP BY ALL
),
lines AS (
    SELECT vendor, client_id, month, 1 AS kind_order, NULL AS lot_id, NULL AS grant_id,
           NULL::DATE AS late_for,
           'overage_included' AS line_kind, least(over, included_credits)::BIGINT AS credits,
           price AS unit_price, NULL::DECIMAL(9, 4) AS markup_percent, policy, included_credits
    FROM overage WHERE policy = 'included' AND included_credits > 0
    UNION ALL
    SELECT vendor, client_id, month, 2, NULL, NULL, NULL, 'overage',
           (over - coalesce(included_credits, 0))::BIGINT, price, markup_percent, policy,
           included_credits
    FROM overage WHERE over > coalesce(included_credits, 0)
    UNION ALL
    SELECT u.vendor, u.client_id, u.month, 3, u.lot_id, u.grant_id, u.late_for_month,
           'purchase', u.credits,
           coalesce(g.price_per_credit, k.price_per_credit)::DECIMAL(12, 4), p.markup_percent,
           p.policy, p.included_credits
    FROM purchases u
    JOIN policies p USING (vendor, client_id)
    LEFT JOIN cfg_grants g
      ON g.vendor = u.vendor AND g.client_id = u.client_id AND g.kind = 'purchase'
     AND g.grant_id = u.grant_id
    LEFT JOIN cfg_contracts k
      ON k.vendor = u.vendor AND coalesce(u.opens, u.month) >= k.starts_on
     AND coalesce(u.opens, u.month) < k.ends_on
    WHERE u.credits <> 0 AND coalesce(g.price_per_credit, k.price_per_credit) IS NOT NULL
),
priced AS (
    SELECT *,
           CASE WHEN line_kind = 'overage_included' THEN 0::DECIMAL(14, 2)
                ELSE round((credits::DECIMAL(18, 0) * unit_price)::DECIMAL(24, 4)
                           * (100 + coalesce(markup_percent, 0))::DECIMAL(10, 4)
                           * 0.01::DECIMAL(3, 2), 2)::DECIMAL(14, 2)
           END AS amount,
           -- 15 -> '15', 12.5 -> '12.5'; the factor 1.15, 1.125
           rtrim(rtrim(markup_percent::VARCHAR, '0'), '.') AS markup_text,
           rtrim(rtrim(((100 + markup_percent)::DECIMAL(10, 4) * 0.01::DECIMAL(3, 2))
                       ::DECIMAL(12, 6)::VARCHAR, '0'), '.') AS factor_text,
           vendor_name(vendor) AS vendor_name
    FROM lines
),
worded AS (
    SELECT *,
           CASE WHEN amount < 0 THEN '-$' ELSE '$' END
               || format('{:,.2f}', abs(amount)::DOUBLE) AS amount_text,
           CASE WHEN markup_percent IS NULL THEN 'at cost'
                ELSE format('at cost plus {}%', markup_text) END AS basis,
           CASE WHEN abs(credits) = 1 THEN 'credit' ELSE 'credits' END AS credit_word
    FROM priced
),
fresh AS (
    SELECT
        vendor, client_id, month,
        row_number() OVER (PARTITION BY client_id, month
                           ORDER BY vendor, kind_order, lot_id)::INTEGER AS line_no,
        line_kind,
        CASE line_kind
            WHEN 'overage_included' THEN format(
                '{}: credits used beyond your own, included (up to {} a month)',
                vendor_name, format('{:,}', included_credits))
            WHEN 'overage' THEN format(
                '{}: credits used beyond your own{}, {}', vendor_name,
                CASE WHEN policy = 'included'
                     THEN format(' and the {} included', format('{:,}', included_credits))
                     ELSE '' END,
                basis)
            ELSE format('{}: purchased block {} of {} credits{}, {}', vendor_name, grant_id,
                        format('{:,}', credits),
                        CASE WHEN late_for IS NOT NULL
                             THEN format(' (late, for {})', strftime(late_for, '%B %Y'))
                             ELSE '' END,
                        basis)
        END AS description,
        credits,
        unit_price,
        markup_percent,
        amount,
        'USD' AS currency,
        CASE WHEN line_kind = 'overage_included'
             THEN format('{} {} included = $0.00', format('{:,}', credits), credit_word)
             ELSE format('{} {} × ${}{} = {}', format('{:,}', credits), credit_word,
                         format('{:,.4f}', unit_price::DOUBLE),
                         CASE WHEN markup_percent IS NULL THEN '' ELSE ' × ' || factor_text END,
                         amount_text)
        END AS arithmetic,
        policy,
        lot_id
    FROM worded
)
SELECT * FROM fresh WHERE month NOT IN (SELECT month FROM invoice_closed_months)
UNION ALL BY NAME
SELECT * FROM frozen_invoice_lines
ORDER BY client_id, month, line_no;
