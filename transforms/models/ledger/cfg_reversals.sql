CREATE TABLE cfg_reversals AS
SELECT s.*, f.path AS source_file, f.ingested_at
FROM ingest.stg_reversals s
JOIN current_config_files c ON c.source = 'reversals' AND c.file_id = s.file_id
JOIN ingest.ingest_files f ON f.file_id = s.file_id AND f.status = 'loaded'
WHERE (s.file_id, s.row_number) NOT IN (SELECT (file_id, row_number) FROM cfg_reversal_repeats);
