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
    p.email_confidence,
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
