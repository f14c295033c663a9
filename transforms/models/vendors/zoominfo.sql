-- Vendor adapter: ZoomInfo. Turns listings and the export files they name into records
-- (records_zoominfo) in the shape every adapter gives, and says which rows it cannot use
-- (quarantine_zoominfo). Reads: ingest.stg_zoominfo_downloads, ingest.stg_zoominfo_exports;
-- records come only from build_files (every file, or a night's new ones: transforms/incremental.py).

-- A listing may be re-delivered (a later download of the same history): for an Export ID
-- the row from the file delivered last wins (latest modification time when first ingested,
-- then latest ingested, never the name); earlier copies are quarantined, saying which numbers differ.
CREATE TABLE zi_listings_checked AS
WITH listings AS (
    -- An Export Date with an offset is booked in the reporting time zone.
    SELECT d.* REPLACE (reporting_time(d.exported_at, d.exported_at_utc_offset) AS exported_at),
           f.path, f.ingested_at,
           coalesce(f.delivered_ns, f.modified_ns, epoch_ns(f.ingested_at)) AS delivered_ns
    FROM ingest.stg_zoominfo_downloads d
    JOIN ingest.ingest_files f ON f.file_id = d.file_id AND f.status = 'loaded'
),
ranked AS (
    SELECT
        *,
        row_number() OVER latest AS copy_rank,
        first_value(path) OVER latest AS kept_path,
        first_value(row_number) OVER latest AS kept_row,
        first_value(delivered_ns) OVER latest AS kept_delivered_ns,
        first_value(records) OVER latest AS kept_records,
        first_value(credits_used) OVER latest AS kept_credits_used,
        first_value(exported_at) OVER latest AS kept_exported_at,
        first_value(exported_by) OVER latest AS kept_exported_by,
        first_value(file_name) OVER latest AS kept_file_name,
        first_value(export_type) OVER latest AS kept_export_type
    FROM listings
    WINDOW latest AS (
        PARTITION BY export_id
        ORDER BY delivered_ns DESC, ingested_at DESC, path DESC, row_number DESC
    )
),
compared AS (
    SELECT
        *,
        concat_ws('; ',
            CASE WHEN records IS DISTINCT FROM kept_records
                 THEN format('Records {} there, {} here', kept_records, records) END,
            CASE WHEN credits_used IS DISTINCT FROM kept_credits_used
                 THEN format('Credits Used {} there, {} here', kept_credits_used, credits_used) END,
            CASE WHEN exported_at IS DISTINCT FROM kept_exported_at
                 THEN format('Export Date {} there, {} here', kept_exported_at, exported_at) END,
            CASE WHEN exported_by IS DISTINCT FROM kept_exported_by
                 THEN format('Exported By {} there, {} here', kept_exported_by, exported_by) END,
            CASE WHEN file_name IS DISTINCT FROM kept_file_name
                 THEN format('File Name {} there, {} here', kept_file_name, file_name) END,
            CASE WHEN export_type IS DISTINCT FROM kept_export_type
                 THEN format('Export Type {} there, {} here', kept_export_type, export_type) END
        ) AS differences
    FROM ranked
),
named AS (
    -- Two exports naming one file name would count its records twice: the first keeps it.
    SELECT
        *,
        row_number() OVER by_name AS name_rank,
        first_value(export_id) OVER by_name AS name_owner
    FROM compared
    WINDOW by_name AS (PARTITION BY file_name, copy_rank = 1 ORDER BY exported_at, export_id)
)
SELECT
    * EXCLUDE (kept_path, kept_row, copy_rank, name_rank, name_owner, delivered_ns, differences,
               kept_delivered_ns, kept_records, kept_credits_used, kept_exported_at,
               kept_exported_by, kept_file_name, kept_export_type),
    CASE
        WHEN copy_rank > 1
            THEN format('Export ID {} is listed again in {} row {}, delivered {} (file modified '
                        '{} UTC); that later copy is used{}',
                        export_id, kept_path, kept_row,
                        CASE WHEN kept_delivered_ns > delivered_ns THEN 'later'
                             ELSE 'at the same time and ingested later or later by name' END,
                        strftime(make_timestamp(kept_delivered_ns // 1000), '%Y-%m-%d %H:%M:%S'),
                        CASE WHEN differences = '' THEN ' (same numbers)'
                             ELSE '; numbers differ: ' || differences END)
        WHEN name_rank > 1
            THEN format('File Name {} is already named by export {}', file_name, name_owner)
        WHEN exported_at >= getvariable('cutoff')
            THEN format('Export Date {} is after the as-of date {}; it counts in a later run',
                        strftime(exported_at, '%Y-%m-%d %H:%M'), getvariable('as_of'))
    END AS problem
FROM named;

CREATE TABLE zi_listings AS
SELECT * EXCLUDE (problem) FROM zi_listings_checked WHERE problem IS NULL;

-- The file a listing row names, matched by base name exactly as the vendor wrote it (Acme.csv
-- and ACME.csv are two files); a file ingested under a second name (same bytes) still
-- resolves to the one loaded copy.
CREATE TABLE zi_export_files AS
SELECT DISTINCT
    regexp_extract(f.path, '[^/]+$') AS file_name_key,
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
JOIN zi_export_files ef ON ef.file_name_key = l.file_name
JOIN ingest.stg_zoominfo_exports r ON r.file_id = ef.file_id
WHERE r.file_id IN (SELECT file_id FROM build_files);

-- The file each export's records are traced to: the one its listing names. Two exports'
-- files can hold the same bytes, loaded once under the name that came first; each export
-- still names its own file, whichever came first.
CREATE TABLE files_zoominfo AS
SELECT l.export_id, ef.file_id, min(f.path) AS source_file
FROM zi_listings l
JOIN zi_export_files ef ON ef.file_name_key = l.file_name
JOIN ingest.ingest_files f
  ON f.file_id = ef.file_id AND regexp_extract(f.path, '[^/]+$') = ef.file_name_key
GROUP BY ALL;

-- Rows of export files that no usable listing row names: they have no date or user yet.
CREATE TABLE quarantine_zoominfo AS
SELECT
    r.file_id,
    r.row_number,
    CASE
        WHEN pending.problem IS NOT NULL THEN 'its listing row is not used: ' || pending.problem
        WHEN near.file_name IS NOT NULL
            THEN format('no listing row names this file exactly; export {} names {}, which differs '
                        'only in case or spaces (File Names are matched exactly as written)',
                        near.export_id, near.file_name)
        ELSE 'no loaded downloads listing row names this file (is its listing row quarantined or '
             || 'not delivered yet?)'
    END AS reason
FROM ingest.stg_zoominfo_exports r
LEFT JOIN (
    SELECT ef.file_id, min(lc.problem) AS problem
    FROM zi_listings_checked lc
    JOIN zi_export_files ef ON ef.file_name_key = lc.file_name
    GROUP BY ALL
) pending ON pending.file_id = r.file_id
LEFT JOIN (
    -- A listing row naming this file but for case or spaces: reported, never used.
    SELECT ef.file_id, min(l.export_id) AS export_id, min(l.file_name) AS file_name
    FROM zi_listings l
    JOIN zi_export_files ef
      ON lower(regexp_replace(ef.file_name_key, '\s+', '', 'g'))
       = lower(regexp_replace(l.file_name, '\s+', '', 'g'))
     AND ef.file_name_key <> l.file_name
    GROUP BY ALL
) near ON near.file_id = r.file_id
WHERE r.file_id NOT IN (
    SELECT ef.file_id FROM zi_listings l JOIN zi_export_files ef ON ef.file_name_key = l.file_name
)
UNION ALL
SELECT file_id, row_number, problem FROM zi_listings_checked WHERE problem IS NOT NULL;


-- What ZoomInfo billed for each export: its listing's Credits Used. Beyond the export's new
-- records, the excess is laid on its re-exports (duplicate_reexports: charged_reexport).
CREATE TABLE billed_zoominfo AS
SELECT 'zoominfo' AS vendor, export_id, credits_used AS credits_billed FROM zi_listings;

-- What ZoomInfo says each user used in a month (vendor_reconciliation.sql): the usage
-- summary's monthly plus bulk credits or, without one, the listings' Credits Used.
CREATE TABLE reported_zoominfo AS
WITH usage AS (
    -- A re-downloaded summary replaces the earlier one for the same user and month.
    SELECT u.user, u.period AS month,
           arg_max(u.monthly_credits_used + coalesce(u.bulk_credits_used, 0),
                   (f.ingested_at, f.path, u.row_number)) AS usage_reported
    FROM ingest.stg_zoominfo_usage u
    JOIN ingest.ingest_files f ON f.file_id = u.file_id AND f.status = 'loaded'
    WHERE u.period <= getvariable('as_of')
    GROUP BY ALL
),
listed AS (
    SELECT l.exported_by AS user,
           date_trunc('month', l.exported_at)::DATE AS month,
           sum(l.credits_used) AS listed,
           sum(l.credits_used) FILTER (WHERE ef.file_id IS NULL) AS listed_without_file
    FROM zi_listings l
    LEFT JOIN (SELECT DISTINCT file_name_key, file_id FROM zi_export_files) ef
      ON ef.file_name_key = l.file_name
    GROUP BY ALL
)
SELECT
    'zoominfo' AS vendor,
    user,
    month,
    coalesce(u.usage_reported, l.listed) AS reported_credits,
    CASE WHEN u.usage_reported IS NOT NULL THEN 'usage summary'
         WHEN l.listed IS NOT NULL THEN 'listings' END AS reported_from,
    l.listed AS listing_credits,
    l.listed_without_file,
    CASE WHEN u.usage_reported > 0 AND l.listed IS NULL THEN u.usage_reported END
        AS usage_without_listing,
    u.usage_reported - l.listed AS usage_minus_listings,
    NULL::DATE AS used_to_date_on
FROM usage u
FULL JOIN listed l USING (user, month);

-- Export files no listing names: their records have no user or month yet.
CREATE TABLE unattributed_zoominfo AS
SELECT
    'zoominfo' AS vendor,
    format('export file with no listing: {} ({} rows)', any_value(f.path), count(*)) AS reason
FROM quarantine_zoominfo q
JOIN ingest.ingest_files f ON f.file_id = q.file_id AND f.status = 'loaded'
WHERE q.reason LIKE 'no loaded downloads listing row names this file%'
GROUP BY q.file_id;

-- A night adds only files whose listing and export file came together, and listings that
-- repeat nothing listed before: records already published keep their listing, and so
-- their date and user. In a full build every file is in build_files: nothing here.
CREATE TABLE night_conflicts_zoominfo AS
WITH in_build AS (
    SELECT lc.*, lc.file_id IN (SELECT file_id FROM build_files WHERE file_id IS NOT NULL)
        AS listing_in_build
    FROM zi_listings_checked lc
)
SELECT 'zoominfo' AS vendor,
       'a listing names an export file delivered on another night' AS reason
FROM in_build l
JOIN zi_export_files ef ON ef.file_name_key = l.file_name
WHERE l.listing_in_build
   <> (ef.file_id IN (SELECT file_id FROM build_files WHERE file_id IS NOT NULL))
UNION ALL
SELECT 'zoominfo', 'a listing repeats an Export ID or File Name listed before'
FROM in_build n
JOIN in_build e
  ON (n.export_id = e.export_id OR n.file_name = e.file_name)
WHERE n.listing_in_build AND NOT e.listing_in_build;
