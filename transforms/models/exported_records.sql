-- Every exported (or purchased, or revealed) record, from whichever vendor, with the
-- client it is attributed to. Grain: one row per record. Each vendor's adapter
-- (vendors/<vendor>.sql) gives records_<vendor> in one shape; build.py unions them as
-- vendor_records and their quarantines as vendor_quarantine.

-- Rows an adapter could not use, and records it flagged (e.g. no key, dated after as-of).
CREATE TABLE exports_quarantine AS
SELECT file_id, row_number, reason FROM vendor_quarantine
UNION ALL
SELECT file_id, row_number, problem FROM vendor_records WHERE problem IS NOT NULL;

-- The file each record came from: kept apart, not on every record (a path per row made the
-- records a quarter bigger in memory). By file_id and export_id where an adapter says which
-- file an export names (vendor_files: every record with an export_id), else by file_id.
-- Joined LEFT, on file_id and export_id IS NOT DISTINCT FROM: an equality join keeps the
-- plan joining this small table last; a record it misses shows as an entry without a
-- source file, which audits/entries_traced.sql reports.
CREATE TABLE record_files AS
SELECT file_id, export_id, source_file FROM vendor_files
UNION ALL
SELECT file_id, NULL, path FROM ingest.ingest_files
WHERE status = 'loaded' AND file_id NOT IN (SELECT file_id FROM vendor_files);

-- Attribution: the users.csv row valid on the export's date; nobody -> client 'unassigned'.
-- A view: ledger.mark_charges keeps the records once, in the order they are charged.
CREATE VIEW exported_records AS
SELECT
    e.* EXCLUDE (problem),
    coalesce(u.client_id, 'unassigned') AS client_id
FROM vendor_records e
LEFT JOIN cfg_users u
  ON u.vendor = e.vendor AND u.user = e.user
 AND coalesce(u.valid_from, DATE '0001-01-01') <= e.exported_at::DATE
 AND e.exported_at::DATE < coalesce(u.valid_to, DATE '9999-12-31')
WHERE e.problem IS NULL;
