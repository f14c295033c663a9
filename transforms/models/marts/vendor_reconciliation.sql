-- DOMAIN rule 7. Grain: vendor x user x month. What the vendor reported against what the
-- rules say was due, with a reason for every difference.
--   reported: the vendor's own figure, from its adapter (vendors/<vendor>.sql gives
--   reported_<vendor>: a usage summary, listings, a usage table; a figure used to date
--   (used_to_date_on) is set against every charge up to the end of that day). A month the
--   vendor gives no figure for is taken as it was computed.
--   computed: charges by the rules (ledger.mark_charges), summed by day in daily_charges.
-- Reasons: charged re-export (a listing charged re-exports: see duplicate_reexports),
-- listing without its export file, usage summary with no exports, usage summary differing
-- from the listings, unknown user, outside any contract; what is left is "unexplained".
-- What the adapter cannot put on a user (vendor_unattributed: an export file no listing
-- names) shows as rows with no user.

CREATE TABLE vendor_reconciliation AS
WITH computed AS (
    SELECT vendor, user, date_trunc('month', day)::DATE AS month,
           sum(credits) AS computed, bool_or(client_id = 'unassigned') AS unknown_user
    FROM daily_charges GROUP BY ALL
),
outside AS (
    -- Contracts run from one date to another, so a day is inside one or not.
    SELECT c.vendor, c.user, date_trunc('month', c.day)::DATE AS month,
           sum(c.credits) AS outside_credits
    FROM daily_charges c
    WHERE NOT EXISTS (
        SELECT 1 FROM cfg_contracts k
        WHERE k.vendor = c.vendor AND c.day >= k.starts_on AND c.day < k.ends_on
    )
    GROUP BY ALL
),
charged_reexports AS (
    SELECT vendor, repeat_user AS user, date_trunc('month', repeat_exported_at)::DATE AS month,
           sum(credits_disputable) AS charged_reexport
    FROM duplicate_reexports WHERE kind = 'charged_reexport' GROUP BY ALL
),
to_date AS (
    -- A figure used to date against every charge of the user up to the end of its day.
    SELECT r.vendor, r.user, r.month, coalesce(sum(c.credits), 0) AS computed_to_date
    FROM vendor_reported r
    LEFT JOIN daily_charges c
      ON c.vendor = r.vendor AND c.user = r.user AND c.day <= r.used_to_date_on
    WHERE r.used_to_date_on IS NOT NULL
    GROUP BY ALL
),
keys AS (
    SELECT vendor, user, month FROM computed
    UNION SELECT vendor, user, month FROM vendor_reported
),
joined AS (
    SELECT
        k.vendor, k.user, k.month,
        coalesce(c.computed, 0) AS computed,
        coalesce(c.unknown_user, false)
            OR k.user NOT IN (SELECT user FROM cfg_users WHERE vendor = k.vendor) AS unknown_user,
        coalesce(o.outside_credits, 0) AS outside_credits,
        r.vendor IS NOT NULL AS has_report,
        r.reported_credits,
        r.reported_from,
        r.listing_credits,
        coalesce(r.listed_without_file, 0) AS listed_without_file,
        coalesce(r.usage_without_listing, 0) AS usage_without_listing,
        coalesce(r.usage_minus_listings, 0) AS usage_minus_listings,
        r.used_to_date_on,
        t.computed_to_date,
        coalesce(cr.charged_reexport, 0) AS charged_reexport
    FROM keys k
    LEFT JOIN computed c USING (vendor, user, month)
    LEFT JOIN outside o USING (vendor, user, month)
    LEFT JOIN vendor_reported r USING (vendor, user, month)
    LEFT JOIN to_date t USING (vendor, user, month)
    LEFT JOIN charged_reexports cr USING (vendor, user, month)
),
measured AS (
    SELECT
        *,
        CASE WHEN has_report THEN coalesce(reported_credits, 0) ELSE computed END AS reported,
        CASE WHEN used_to_date_on IS NOT NULL THEN computed_to_date ELSE computed END
            AS computed_credits
    FROM joined
),
explained AS (
    SELECT
        *,
        reported - computed_credits AS variance,
        -- a figure with no listing behind it, in a month nothing was charged
        CASE WHEN usage_without_listing > 0 AND computed = 0
             THEN usage_without_listing ELSE 0 END AS usage_without_exports
    FROM measured
)
SELECT
    vendor,
    user,
    month,
    reported::BIGINT AS reported_credits,
    reported_from,
    listing_credits::BIGINT AS listing_credits,
    computed_credits::BIGINT AS computed_credits,
    variance::BIGINT AS variance,
    CASE
        WHEN variance = 0 AND NOT unknown_user AND outside_credits = 0
            THEN 'reconciled: reported equals computed'
        ELSE concat_ws('; ',
            CASE WHEN charged_reexport > 0 THEN format('charged re-export: {}', charged_reexport) END,
            CASE WHEN listed_without_file > 0
                 THEN format('listing without export file: {}', listed_without_file) END,
            CASE WHEN usage_without_exports > 0
                 THEN format('usage summary with no exports: {}', usage_without_exports) END,
            CASE WHEN usage_minus_listings <> 0 AND usage_without_exports = 0
                 THEN format('usage summary differs from listings by {}', usage_minus_listings) END,
            CASE WHEN unknown_user THEN 'unknown user (counted against client unassigned)' END,
            CASE WHEN outside_credits > 0 THEN format('outside any contract: {}', outside_credits) END,
            CASE WHEN variance - charged_reexport - listed_without_file - usage_without_exports
                      - CASE WHEN usage_without_exports = 0 THEN usage_minus_listings ELSE 0 END <> 0
                 THEN format('unexplained: {}', variance - charged_reexport - listed_without_file
                             - usage_without_exports
                             - CASE WHEN usage_without_exports = 0 THEN usage_minus_listings ELSE 0 END)
            END
        )
    END AS reason
FROM explained
UNION ALL
SELECT vendor, NULL, NULL, 0, NULL, NULL, 0, 0, reason FROM vendor_unattributed
ORDER BY 1, 2, 3;
