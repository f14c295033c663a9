-- Every input row is loaded or quarantined: rows read = loaded + quarantined, per file.
SELECT path, rows_read, rows_loaded, rows_quarantined FROM ingest_manifest
WHERE rows_read <> rows_loaded + rows_quarantined;
