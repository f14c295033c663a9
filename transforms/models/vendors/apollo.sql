-- Vendor adapter: Apollo. Its credit usage table is the charge log: each row is one action
-- (a reveal, an export) costing its Credits. The record is what the row describes (Apollo's
-- table carries no record ID), so repeats cannot be matched across rows.
-- Reads: ingest.stg_apollo_usage;
-- records come only from build_files (every file, or a night's new ones: transforms/incremental.py).

CREATE VIEW records_apollo AS
SELECT
    'apollo' AS vendor,
    NULL AS export_id,
    u.used_at AS exported_at,
    u.user,
    coalesce(u.data_requested, 'contact') AS record_type,
    coalesce(u.description, format('row {}', u.row_number)) AS record_key,
    u.file_id,
    u.row_number,
    f.ingested_at AS recorded_at,
    u.credits AS row_credits,
    NULL AS email_confidence,
    CASE WHEN u.used_at >= getvariable('cutoff')
        THEN format('Date {} is after the as-of date {}; it counts in a later run',
                    strftime(u.used_at, '%Y-%m-%d %H:%M'), getvariable('as_of'))
    END AS problem
FROM (
    SELECT * REPLACE (reporting_time(used_at, used_at_utc_offset) AS used_at)
    FROM ingest.stg_apollo_usage
) u
JOIN ingest.ingest_files f ON f.file_id = u.file_id AND f.status = 'loaded'
WHERE u.file_id IN (SELECT file_id FROM build_files);

-- What Apollo says each user used in a month (vendor_reconciliation.sql): its usage table.
CREATE TABLE reported_apollo AS
SELECT 'apollo' AS vendor, user, date_trunc('month', used_at)::DATE AS month,
       sum(credits) AS reported_credits, 'usage table' AS reported_from
FROM (SELECT user, credits, reporting_time(used_at, used_at_utc_offset) AS used_at
      FROM ingest.stg_apollo_usage)
WHERE used_at < getvariable('cutoff')
GROUP BY ALL;
