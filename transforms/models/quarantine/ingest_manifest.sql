CREATE TABLE ingest_manifest AS
WITH staged AS (
    SELECT file_id, count(*) AS staged FROM staged_rows GROUP BY ALL
),
quarantined AS (
    SELECT file_id, count(*) AS quarantined,
           count(*) FILTER (WHERE rejected_by = 'rules') AS rule_rejects
    FROM quarantine GROUP BY ALL
)
SELECT
    f.file_id,
    f.vendor,
    f.source,
    f.path,
    f.content_hash,
    f.size_bytes,
    f.current_status AS status,
    f.duplicate_of,
    f.encoding,
    f.delimiter,
    f.rows_read,
    -- A superseded config file keeps the counts of its ingest; the rules only judge current ones.
    CASE f.current_status
        WHEN 'loaded' THEN coalesce(s.staged, 0) - coalesce(q.rule_rejects, 0)
        ELSE f.rows_loaded
    END AS rows_loaded,
    CASE f.current_status
        WHEN 'loaded' THEN coalesce(q.quarantined, 0)
        ELSE f.rows_quarantined
    END AS rows_quarantined,
    f.error,
    f.ingested_at
FROM file_status f
LEFT JOIN staged s ON s.file_id = f.file_id AND f.status = 'loaded'
LEFT JOIN quarantined q ON q.file_id = f.file_id AND f.status = 'loaded'
ORDER BY f.source, f.path, f.ingested_at;
