-- A baseline holds from effective_month until a later row for the same client supersedes it.
CREATE TABLE cfg_allocations_checked AS
WITH allocations AS (
    SELECT
        s.*,
        min(s.row_number) OVER (PARTITION BY s.vendor, s.client_id, s.effective_month) AS first_row
    FROM ingest.stg_allocations s
    JOIN current_config_files c ON c.source = 'allocations' AND c.file_id = s.file_id
)
SELECT
    * EXCLUDE (first_row),
    CASE
        WHEN client_id NOT IN (SELECT client_id FROM cfg_clients)
            THEN format('client_id ''{}'' is not in clients.csv', client_id)
        WHEN row_number <> first_row
            THEN format('row {} already sets {} for {} from {}; one row per client and month',
                        first_row, vendor, client_id, strftime(effective_month, '%Y-%m'))
    END AS problem
FROM allocations;
