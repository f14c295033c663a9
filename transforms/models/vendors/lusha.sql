-- Vendor adapter: Lusha. Its usage export is one row per contact a user revealed; the rule
-- (first_in_window, schemas/headers/lusha.toml) charges 1 credit per contact not charged
-- in the window, so a contact revealed again is free. Reads: ingest.stg_lusha_reveals;
-- records come only from build_files (every file, or a night's new ones: transforms/incremental.py).
-- Each reveal is its own export (export_id: its file and row, as a support ticket would
-- name it), billed what Lusha says it
-- took for it: a contact revealed again that Lusha charged anyway is a charged re-export,
-- disputable (duplicate_reexports), and explains the difference in the reconciliation.

CREATE TABLE lusha_reveals AS
SELECT r.*, format('{} row {}', f.path, r.row_number) AS export_id, f.path,
       reporting_time(r.revealed_at, r.revealed_at_utc_offset) AS revealed_at_local
FROM ingest.stg_lusha_reveals r
JOIN ingest.ingest_files f ON f.file_id = r.file_id AND f.status = 'loaded'
WHERE r.file_id IN (SELECT file_id FROM build_files);

CREATE VIEW records_lusha AS
SELECT
    'lusha' AS vendor,
    r.export_id,
    r.revealed_at_local AS exported_at,
    r.revealed_by AS user,
    'contact' AS record_type,
    record_id(r.contact_id) AS record_key,
    r.file_id,
    r.row_number,
    f.ingested_at AS recorded_at,
    NULL::BIGINT AS row_credits,  -- the charge rule decides (ledger.mark_charges)
    NULL AS email_confidence,
    CASE WHEN r.revealed_at_local >= getvariable('cutoff')
        THEN format('Date {} is after the as-of date {}; it counts in a later run',
                    strftime(r.revealed_at_local, '%Y-%m-%d %H:%M'), getvariable('as_of'))
    END AS problem
FROM lusha_reveals r
JOIN ingest.ingest_files f ON f.file_id = r.file_id;

-- The file each reveal is traced to, and what Lusha took for it.
CREATE TABLE files_lusha AS
SELECT export_id, file_id, path AS source_file FROM lusha_reveals;

CREATE TABLE billed_lusha AS
SELECT 'lusha' AS vendor, export_id, credits AS credits_billed FROM lusha_reveals
WHERE revealed_at_local < getvariable('cutoff');

-- What Lusha says each user used in a month (vendor_reconciliation.sql): the credits its
-- export shows, summed.
CREATE TABLE reported_lusha AS
SELECT 'lusha' AS vendor, revealed_by AS user, date_trunc('month', revealed_at)::DATE AS month,
       sum(credits) AS reported_credits, 'usage export' AS reported_from
FROM (SELECT revealed_by, credits,
             reporting_time(revealed_at, revealed_at_utc_offset) AS revealed_at
      FROM ingest.stg_lusha_reveals)
WHERE revealed_at < getvariable('cutoff')
GROUP BY ALL;
