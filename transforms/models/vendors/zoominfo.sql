-- Vendor adapter: ZoomInfo. Turns listings and the export files they name into records
-- (records_zoominfo) in the shape every adapter gives, and says which rows it cannot use
-- (quarantine_zoominfo). Reads: ingest.stg_zoominfo_downloads, ingest.stg_zoominfo_exports;
-- records come only from build_files (every file, or a night's new ones: transforms/incremental.py).

-- A listing may be re-delivered (a later download of the same history): for an Export ID
-- the row from the most recently ingested file wins; earlier copies are quarantined.
CREATE TABLE zi_listings_checked AS
WITH listings AS (
    -- An Export Date with an offset is booked in the reporting time zone.
    SELECT d.* REPLACE (reporting_time(d.exported_at, d.exported_at_utc_offset) AS exported_at),
           f.path, f.ingested_at
    FROM ingest.stg_zoominfo_downloads d
    JOIN ingest.ingest_files f ON f.file_id = d.file_id AND f.status = 'loaded'
),
ranked AS (
    SELECT
        *,
        row_number() OVER latest AS copy_rank,
        first_value(path) OVER latest AS kept_path,
        first_value(row_number) OVER latest AS kept_row
    FROM listings
    WINDOW latest AS (PARTITION BY export_id ORDER BY ingested_at DESC, path DESC, row_number DESC)
),
named AS (
    -- Two exports naming one file name would count its records twice: the first keeps it.
    SELECT
        *,
        row_number() OVER by_name AS name_rank,
        first_value(export_id) OVER by_name AS name_owner
    FROM ranked
    WINDOW by_name AS (PARTITION BY lower(file_name), copy_rank = 1 ORDER BY exported_at, export_id)
)
SELECT
    * EXCLUDE (kept_path, kept_row, copy_rank, name_rank, name_owner),
    CASE
        WHEN copy_rank > 1
            THEN format('Export ID {} is listed again in {} row {}; that later copy is used',
                        export_id, kept_path, kept_row)
        WHEN name_rank > 1
            THEN format('File Name {} is already named by export {}', file_name, name_owner)
        WHEN exported_at >= getvariable('cutoff')
            THEN format('Export Date {} is after the as-of date {}; it counts in a later run',
                        strftime(exported_at, '%Y-%m-%d %H:%M'), getvariable('as_of'))
    END AS problem
FROM named;

CREATE TABLE zi_listings AS
SELECT * EXCLUDE (problem) FROM zi_listings_checked WHERE problem IS NULL;

-- The file a listing row names, matched by base name; a file ingested under a second name
-- (same bytes) still resolves to the one loaded copy.
CREATE TABLE zi_export_files AS
SELECT DISTINCT
    lower(regexp_extract(f.path, '[^/]+$')) AS file_name_key,
    f.file_id,
    loaded.path,
    loaded.ingested_at
FROM ingest.ingest_files f
JOIN ingest.ingest_files loaded ON loaded.file_id = f.file_id AND loaded.status = 'loaded'
WHERE f.source = 'zoominfo_exports';

-- A view (all adapters give views): ledger.mark_charges keeps the records, once.
CREATE VIEW records_zoominfo AS
SELECT
    'zoominfo' AS vendor,
    l.export_id,
    l.exported_at,
    l.exported_by AS user,
    CASE l.export_type WHEN 'contacts' THEN 'contact' ELSE 'company' END AS record_type,
    record_id(CASE l.export_type WHEN 'contacts' THEN r.contact_id ELSE r.company_id END)
        AS record_key,
    r.file_id,
    r.row_number,
    -- When the pipeline first knew of this record: both its listing and its file had arrived.
    greatest(l.ingested_at, ef.ingested_at) AS recorded_at,
    NULL::BIGINT AS row_credits,  -- ZoomInfo: the charge rule decides (ledger.mark_charges)
    NULL AS email_confidence,
    CASE
        WHEN l.export_type = 'contacts' AND r.contact_id IS NULL
            THEN 'row of a Contacts export has no ZoomInfo Contact ID'
        WHEN l.export_type = 'companies' AND r.company_id IS NULL
            THEN 'row of a Companies export has no ZoomInfo Company ID'
    END AS problem
FROM zi_listings l
JOIN zi_export_files ef ON ef.file_name_key = lower(l.file_name)
JOIN ingest.stg_zoominfo_exports r ON r.file_id = ef.file_id
WHERE r.file_id IN (SELECT file_id FROM build_files);

-- The file each export's records are traced to: the one its listing names. Two exports'
-- files can hold the same bytes, loaded once under the name that came first; each export
-- still names its own file, whichever came first.
CREATE TABLE files_zoominfo AS
SELECT l.export_id, ef.file_id, min(f.path) AS source_file
FROM zi_listings l
JOIN zi_export_files ef ON ef.file_name_key = lower(l.file_name)
JOIN ingest.ingest_files f
  ON f.file_id = ef.file_id AND lower(regexp_extract(f.path, '[^/]+$')) = ef.file_name_key
GROUP BY ALL;

-- Rows of export files that no usable listing row names: they have no date or user yet.
CREATE TABLE quarantine_zoominfo AS
SELECT
    r.file_id,
    r.row_number,
    CASE
        WHEN pending.problem IS NOT NULL THEN 'its listing row is not used: ' || pending.problem
        ELSE 'no loaded downloads listing row names this file (is its listing row quarantined or '
             || 'not delivered yet?)'
    END AS reason
FROM ingest.stg_zoominfo_exports r
LEFT JOIN (
    SELECT ef.file_id, min(lc.problem) AS problem
    FROM zi_listings_checked lc
    JOIN zi_export_files ef ON ef.file_name_key = lower(lc.file_name)
    GROUP BY ALL
) pending ON pending.file_id = r.file_id
WHERE r.file_id NOT IN (
    SELECT ef.file_id FROM zi_listings l JOIN zi_export_files ef ON ef.file_name_key = lower(l.file_name)
)
UNION ALL
SELECT file_id, row_number, problem FROM zi_listings_checked WHERE problem IS NOT NULL;

