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
