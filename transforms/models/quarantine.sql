-- Every input row is loaded or quarantined (DOMAIN rule 10). Grain of quarantine: one
-- rejected input row, with all its reasons. Rows are rejected at ingest (unreadable,
-- failing their schema) or by the rules above (config_quarantine, exports_quarantine);
-- the latter are re-decided every run, so a row waiting for its listing loads once it comes.
-- Reads: ingest.ingest_files, ingest.ingest_quarantine, staged_rows (every stg_* row's key),
-- rejected_raw_rows (the text of the rows in rule_rejects).
-- Both tables cover build_files: every file, or a night's new ones (transforms/incremental.py
-- adds them to the last published rows, which the night cannot change).

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

INSERT INTO rule_rejects
SELECT file_id, row_number, string_agg(DISTINCT reason, '; ' ORDER BY reason) AS reason
FROM (
    SELECT * FROM config_quarantine
    UNION ALL SELECT * FROM exports_quarantine
    UNION ALL SELECT * FROM reversals_quarantine
)
GROUP BY ALL;

CREATE TABLE quarantine AS
WITH rejects AS (
    SELECT file_id, row_number, raw_row, reason, 'ingest' AS rejected_by FROM ingest.ingest_quarantine
    UNION ALL
    SELECT r.file_id, r.row_number, s.raw_row, r.reason, 'rules'
    FROM rule_rejects r JOIN rejected_raw_rows s USING (file_id, row_number)
)
SELECT
    f.vendor,
    f.source,
    f.path AS file,
    r.file_id,
    r.row_number,
    r.raw_row,
    r.reason,
    r.rejected_by
FROM rejects r
JOIN file_status f ON f.file_id = r.file_id AND f.current_status IN ('loaded', 'rejected')
ORDER BY f.path, r.row_number;

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
