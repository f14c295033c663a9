-- DOMAIN rule 7. Grain: vendor x user x month. What the vendor reported against what the
-- rules say was due, with a reason for every difference.
--   reported: ZoomInfo's usage summary (monthly + bulk credits) or, without one, the sum of
--   its listings' Credits Used; 6sense's credit usage snapshot (used to date, the month's
--   last snapshot, set against charges to that date); Apollo's usage table.
--   computed: charges by the rules (ledger.mark_charges), summed by day in daily_charges.
-- Reasons: charged re-export (a listing charged re-exports: see duplicate_reexports),
-- listing without its export file, usage summary with no exports, usage summary differing
-- from the listings, unknown user, outside any contract; what is left is "unexplained".
-- Export files no listing names cannot be put on a user: they show as rows with no user.

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
zi_usage AS (
    -- A re-downloaded summary replaces the earlier one for the same user and month.
    SELECT 'zoominfo' AS vendor, u.user, u.period AS month,
           arg_max(u.monthly_credits_used + coalesce(u.bulk_credits_used, 0),
                   (f.ingested_at, f.path, u.row_number)) AS usage_reported
    FROM ingest.stg_zoominfo_usage u
    JOIN ingest.ingest_files f ON f.file_id = u.file_id AND f.status = 'loaded'
    GROUP BY ALL
),
zi_listed AS (
    SELECT 'zoominfo' AS vendor, l.exported_by AS user,
           date_trunc('month', l.exported_at)::DATE AS month,
           sum(l.credits_used) AS listed,
           sum(l.credits_used) FILTER (WHERE ef.file_id IS NULL) AS listed_without_file
    FROM zi_listings l
    LEFT JOIN (SELECT DISTINCT file_name_key, file_id FROM zi_export_files) ef
      ON ef.file_name_key = l.file_name
    GROUP BY ALL
),
charged_reexports AS (
    SELECT vendor, repeat_user AS user, date_trunc('month', repeat_exported_at)::DATE AS month,
           sum(credits_disputable) AS charged_reexport
    FROM duplicate_reexports WHERE kind = 'charged_reexport' GROUP BY ALL
),
six_snapshots AS (
    -- 6sense reports credits used to date: take each month's last snapshot per user and
    -- set it against the charges up to the end of that day.
    SELECT '6sense' AS vendor, u.user, date_trunc('month', u.as_of_date)::DATE AS month,
           arg_max(u.used_credits, (u.as_of_date, f.ingested_at, u.row_number)) AS used_to_date,
           max(u.as_of_date) AS as_of_date
    FROM ingest.stg_sixsense_usage u
    JOIN ingest.ingest_files f ON f.file_id = u.file_id AND f.status = 'loaded'
    WHERE u.as_of_date <= getvariable('as_of')
    GROUP BY ALL
),
six AS (
    SELECT s.vendor, s.user, s.month, s.used_to_date,
           coalesce(sum(c.credits), 0) AS computed_to_date
    FROM six_snapshots s
    LEFT JOIN daily_charges c
      ON c.vendor = '6sense' AND c.user = s.user AND c.day <= s.as_of_date
    GROUP BY ALL
),
apollo AS (
    SELECT 'apollo' AS vendor, user, date_trunc('month', used_at)::DATE AS month,
           sum(credits) AS usage_reported
    FROM (SELECT user, credits, reporting_time(used_at, used_at_utc_offset) AS used_at
          FROM ingest.stg_apollo_usage)
    WHERE used_at < getvariable('cutoff')
    GROUP BY ALL
),
keys AS (
    SELECT vendor, user, month FROM computed
    UNION SELECT vendor, user, month FROM zi_usage WHERE month <= getvariable('as_of')
    UNION SELECT vendor, user, month FROM zi_listed
    UNION SELECT vendor, user, month FROM six
    UNION SELECT vendor, user, month FROM apollo
),
joined AS (
    SELECT
        k.vendor, k.user, k.month,
        coalesce(c.computed, 0) AS computed,
        coalesce(c.unknown_user, false)
            OR k.user NOT IN (SELECT user FROM cfg_users WHERE vendor = k.vendor) AS unknown_user,
        coalesce(o.outside_credits, 0) AS outside_credits,
        zu.usage_reported AS zi_usage,
        zl.listed AS zi_listed,
        coalesce(zl.listed_without_file, 0) AS listed_without_file,
        coalesce(cr.charged_reexport, 0) AS charged_reexport,
        s.used_to_date, s.computed_to_date,
        a.usage_reported AS apollo_usage
    FROM keys k
    LEFT JOIN computed c USING (vendor, user, month)
    LEFT JOIN outside o USING (vendor, user, month)
    LEFT JOIN zi_usage zu USING (vendor, user, month)
    LEFT JOIN zi_listed zl USING (vendor, user, month)
    LEFT JOIN charged_reexports cr USING (vendor, user, month)
    LEFT JOIN six s USING (vendor, user, month)
    LEFT JOIN apollo a USING (vendor, user, month)
),
measured AS (
    SELECT
        *,
        CASE vendor
            WHEN 'zoominfo' THEN coalesce(zi_usage, zi_listed, 0)
            WHEN '6sense' THEN coalesce(used_to_date, computed_to_date, computed)
            ELSE coalesce(apollo_usage, 0)
        END AS reported,
        CASE vendor
            WHEN 'zoominfo' THEN CASE WHEN zi_usage IS NOT NULL THEN 'usage summary'
                                      WHEN zi_listed IS NOT NULL THEN 'listings' END
            WHEN '6sense' THEN CASE WHEN used_to_date IS NOT NULL THEN 'usage to date' END
            ELSE 'usage table'
        END AS reported_from,
        CASE WHEN vendor = '6sense' AND used_to_date IS NOT NULL THEN computed_to_date ELSE computed END
            AS computed_credits
    FROM joined
),
explained AS (
    SELECT
        *,
        reported - computed_credits AS variance,
        CASE WHEN vendor = 'zoominfo' AND zi_usage > 0 AND zi_listed IS NULL AND computed = 0
             THEN zi_usage ELSE 0 END AS usage_without_exports,
        CASE WHEN vendor = 'zoominfo' AND zi_usage IS NOT NULL AND zi_listed IS NOT NULL
             THEN zi_usage - zi_listed ELSE 0 END AS usage_minus_listings
    FROM measured
)
SELECT
    vendor,
    user,
    month,
    reported::BIGINT AS reported_credits,
    reported_from,
    zi_listed::BIGINT AS listing_credits,
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
SELECT
    'zoominfo', NULL, NULL, 0, NULL, NULL, 0, 0,
    format('export file with no listing: {} ({} rows)', any_value(f.path), count(*))
FROM quarantine_zoominfo q
JOIN ingest.ingest_files f ON f.file_id = q.file_id AND f.status = 'loaded'
WHERE q.reason LIKE 'no loaded downloads listing row names this file%'
GROUP BY q.file_id
ORDER BY 1, 2, 3;
