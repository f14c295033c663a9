-- Each file of build_files with its status this run: a snapshot source's loaded file
-- that is no longer the current config file is superseded.
CREATE TABLE file_status AS
SELECT
    f.*,
    CASE
        WHEN s.snapshot AND f.status = 'loaded' AND f.file_id NOT IN (SELECT file_id FROM current_config_files)
            THEN 'superseded'
        ELSE f.status
    END AS current_status
FROM ingest.ingest_files f
JOIN build_files USING (path, content_hash)
JOIN sources s ON s.source = f.source;
