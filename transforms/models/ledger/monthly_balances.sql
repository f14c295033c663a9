-- DOMAIN rules 9 and 10. Grain: vendor x client x month (month = first day).
-- opening and closing are read from the lots' state at the month's edges; the flows
-- (granted, consumed, forfeited, ...) from the ledger; the conservation audit checks that
-- the two agree: opening + granted + reversed - consumed - forfeited = closing.

CREATE TABLE monthly_balances AS
WITH entry_sums AS MATERIALIZED (
    -- The ledger read once: every sum below is over these groups (a few per lot and month),
    -- not over the entries.
    SELECT vendor, client_id, booking_month, entry_type, lot_id, lot_kind,
           sum(credits) AS credits, sum(-balance_effect) AS drawn, count(*) AS entries
    FROM ledger_entries GROUP BY ALL
),
accounts AS (
    SELECT vendor, client_id, min(booking_month) AS first_month
    FROM entry_sums GROUP BY ALL
),
months AS (
    SELECT
        a.vendor,
        a.client_id,
        m.month,
        (m.month + INTERVAL 1 MONTH)::TIMESTAMP AS month_end,
        -- The open month ends at the as-of date, not at the month's end.
        least((m.month + INTERVAL 1 MONTH)::TIMESTAMP, getvariable('cutoff')) AS edge
    FROM accounts a,
    LATERAL (
        SELECT unnest(generate_series(a.first_month, date_trunc('month', getvariable('as_of')),
                                      INTERVAL 1 MONTH))::DATE AS month
    ) m
),
draws_by_month AS (
    -- Net of credits given back: a lot open at a month's edge holds what was returned to it.
    SELECT lot_id, booking_month AS month, sum(drawn) AS drawn
    FROM entry_sums
    WHERE entry_type = 'consume' OR (entry_type = 'reverse' AND lot_id IS NOT NULL)
    GROUP BY ALL
),
lot_months AS (
    -- For every lot and month: credits drawn before the month and up to its end.
    SELECT
        m.vendor, m.client_id, m.month, m.month_end, m.edge, l.lot_id, l.credits,
        l.effective_on::TIMESTAMP AS opens, l.expires_on::TIMESTAMP AS closes,
        coalesce(sum(d.drawn) FILTER (WHERE d.month < m.month), 0) AS drawn_before,
        coalesce(sum(d.drawn) FILTER (WHERE d.month <= m.month), 0) AS drawn_through
    FROM months m
    JOIN lots l ON l.vendor = m.vendor AND l.client_id = m.client_id
    LEFT JOIN draws_by_month d ON d.lot_id = l.lot_id
    GROUP BY ALL
),
edges AS (
    SELECT
        vendor, client_id, month,
        sum(credits - drawn_before) FILTER (WHERE opens < month AND closes > month) AS opening,
        sum(credits - drawn_through) FILTER (
            WHERE opens < edge AND (closes > edge OR closes >= getvariable('cutoff'))
        ) AS closing
    FROM lot_months GROUP BY ALL
),
flows AS (
    SELECT
        vendor, client_id, booking_month AS month,
        sum(credits) FILTER (WHERE entry_type = 'grant' AND lot_kind = 'baseline') AS baseline_credits,
        sum(credits) FILTER (WHERE entry_type = 'grant' AND lot_kind = 'gift') AS gift_credits,
        sum(credits) FILTER (WHERE entry_type = 'grant' AND lot_kind = 'purchase') AS purchased_credits,
        sum(credits) FILTER (WHERE entry_type = 'grant' AND lot_kind = 'earned') AS earned_credits,
        sum(credits) FILTER (WHERE entry_type = 'grant' AND lot_kind = 'adjustment') AS adjustment_credits,
        sum(credits) FILTER (WHERE entry_type = 'consume') AS consumed_credits,
        sum(credits) FILTER (WHERE entry_type = 'overage') AS overage_credits,
        sum(credits) FILTER (WHERE entry_type = 'reverse' AND lot_id IS NOT NULL) AS reversed_credits,
        sum(credits) FILTER (WHERE entry_type = 'reverse' AND lot_id IS NULL) AS overage_reversed_credits,
        sum(credits) FILTER (WHERE entry_type = 'forfeit') AS forfeited_credits,
        sum(entries) FILTER (WHERE entry_type = 'reexport') AS free_reexports
    FROM entry_sums GROUP BY vendor, client_id, booking_month
)
SELECT
    m.vendor,
    m.client_id,
    m.month,
    coalesce(f.baseline_credits, 0)::BIGINT AS baseline_credits,
    coalesce(f.gift_credits, 0)::BIGINT AS gift_credits,
    coalesce(f.purchased_credits, 0)::BIGINT AS purchased_credits,
    coalesce(f.earned_credits, 0)::BIGINT AS earned_credits,
    coalesce(f.adjustment_credits, 0)::BIGINT AS adjustment_credits,
    coalesce(e.opening, 0)::BIGINT AS opening_balance,
    (coalesce(e.opening, 0) + coalesce(f.baseline_credits, 0) + coalesce(f.gift_credits, 0)
     + coalesce(f.purchased_credits, 0) + coalesce(f.earned_credits, 0)
     + coalesce(f.adjustment_credits, 0))::BIGINT AS available_credits,
    (coalesce(f.consumed_credits, 0) + coalesce(f.overage_credits, 0))::BIGINT AS charged_credits,
    coalesce(f.consumed_credits, 0)::BIGINT AS consumed_credits,
    coalesce(f.overage_credits, 0)::BIGINT AS overage_credits,
    coalesce(f.reversed_credits, 0)::BIGINT AS reversed_credits,
    coalesce(f.overage_reversed_credits, 0)::BIGINT AS overage_reversed_credits,
    coalesce(f.forfeited_credits, 0)::BIGINT AS forfeited_credits,
    coalesce(e.closing, 0)::BIGINT AS closing_balance,
    coalesce(f.free_reexports, 0)::BIGINT AS free_reexports,
    m.month = date_trunc('month', getvariable('as_of')) AS is_open_month,
    -- Rule 8: the close (transforms/close.py use_frozen_balances) shows a closed month as
    -- frozen, and counts what was charged late for one in the first open month.
    false AS is_closed,
    0::BIGINT AS late_charged_credits
FROM months m
LEFT JOIN edges e USING (vendor, client_id, month)
LEFT JOIN flows f USING (vendor, client_id, month)
ORDER BY m.vendor, m.client_id, m.month;
