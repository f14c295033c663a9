-- One row per client: a client_id repeated (also as ' Acme' or 'ACME': ids are keys, read
-- trimmed and in lower case) keeps its first row; the others are quarantined.
CREATE TABLE cfg_clients_checked AS
WITH clients AS (
    SELECT s.*, min(s.row_number) OVER (PARTITION BY s.client_id) AS first_row
    FROM ingest.stg_clients s
    JOIN current_config_files c ON c.source = 'clients' AND c.file_id = s.file_id
)
SELECT
    * EXCLUDE (first_row),
    CASE WHEN row_number <> first_row
        THEN format('client_id {} is already defined by clients.csv row {}; one row per client',
                    client_id, first_row)
    END AS problem
FROM clients;
