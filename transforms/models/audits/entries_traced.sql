-- Every movement is traced to an input file and row (DOMAIN outputs). A charge or re-export
-- without a file would mean record_files (exported_records.sql) missed the file it came from.
SELECT entry_id, entry_type, export_id, source_row FROM entries_to_audit
WHERE source_file IS NULL OR source_row IS NULL;
