-- A reversal row repeated (same vendor, ticket and reference) would give the credits back
-- twice: the first row counts, the others are quarantined (reversals.sql skips them).
CREATE TABLE cfg_reversal_repeats AS
SELECT file_id, row_number,
       format('ticket {} already reverses {} in reversals.csv row {}', ticket, reference, first_row)
           AS reason
FROM (
    SELECT s.*,
           min(s.row_number) OVER (PARTITION BY s.vendor, lower(s.ticket), s.reference) AS first_row
    FROM ingest.stg_reversals s
    JOIN current_config_files c ON c.source = 'reversals' AND c.file_id = s.file_id
)
WHERE row_number <> first_row;
