-- Every input row is loaded or quarantined (DOMAIN rule 10). Grain of quarantine: one
-- rejected input row, with all its reasons. Rows are rejected at ingest (unreadable,
-- failing their schema) or by the rules above (config_quarantine, exports_quarantine);
-- the latter are re-decided every run, so a row waiting for its listing loads once it comes.
-- Reads: ingest.ingest_files, ingest.ingest_quarantine, staged_rows (every stg_* row's key),
-- rejected_raw_rows (the text of the rows in rule_rejects).
-- Both tables cover build_files: every file, or a night's new ones (transforms/incremental.py
-- adds them to the last published rows, which the night cannot change).

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
