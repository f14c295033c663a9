-- Vendor adapter: 6sense. Every purchase log row is one purchased contact, costing its
-- Credits Used. Reads: ingest.stg_sixsense_purchases;
-- records come only from build_files (every file, or a night's new ones: transforms/incremental.py).

CREATE VIEW records_6sense AS
SELECT
    '6sense' AS vendor,
    NULL AS export_id,
    p.purchased_at AS exported_at,
    p.purchased_by AS user,
    'contact' AS record_type,
    record_id(p.contact_id) AS record_key,
    p.file_id,
    p.row_number,
    f.ingested_at AS recorded_at,
    p.credits_used AS row_credits,
    coalesce(p.email_confidence, 'unknown') AS email_confidence,  -- purchase_counts.sql
    CASE WHEN p.purchased_at >= getvariable('cutoff')
        THEN format('Purchase Date {} is after the as-of date {}; it counts in a later run',
                    strftime(p.purchased_at, '%Y-%m-%d %H:%M'), getvariable('as_of'))
    END AS problem
FROM (
    SELECT * REPLACE (reporting_time(purchased_at, purchased_at_utc_offset) AS purchased_at)
    FROM ingest.stg_sixsense_purchases
) p
JOIN ingest.ingest_files f ON f.file_id = p.file_id AND f.status = 'loaded'
WHERE p.file_id IN (SELECT file_id FROM build_files);

-- What 6sense says each user used (vendor_reconciliation.sql): its credit usage reports
-- credits used to date, so each month's last snapshot is set against the charges up to the
-- end of its day (used_to_date_on).
CREATE TABLE reported_6sense AS
SELECT '6sense' AS vendor, u.user, date_trunc('month', u.as_of_date)::DATE AS month,
       arg_max(u.used_credits, (u.as_of_date, f.ingested_at, u.row_number)) AS reported_credits,
       'usage to date' AS reported_from,
       max(u.as_of_date) AS used_to_date_on
FROM ingest.stg_sixsense_usage u
JOIN ingest.ingest_files f ON f.file_id = u.file_id AND f.status = 'loaded'
WHERE u.as_of_date <= getvariable('as_of')
GROUP BY ALL;

-- A night finds a contact's first purchase in the published ledger; a contact bought
-- before only for 0 credits (or not yet counted) has no entry there, so the night cannot
-- say which purchase it repeats. In a full build every file is in build_files: nothing here.
CREATE TABLE night_conflicts_6sense AS
WITH purchases AS (
    SELECT record_id(contact_id) AS record_key,
           file_id IN (SELECT file_id FROM build_files WHERE file_id IS NOT NULL) AS in_build,
           credits_used > 0
               AND reporting_time(purchased_at, purchased_at_utc_offset) < getvariable('cutoff')
               AS charged
    FROM ingest.stg_sixsense_purchases
)
SELECT DISTINCT '6sense' AS vendor,
       'a 6sense contact of the night was bought before for 0 credits' AS reason
FROM purchases
GROUP BY record_key
HAVING bool_or(in_build) AND bool_or(NOT in_build) AND NOT bool_or(NOT in_build AND charged);
