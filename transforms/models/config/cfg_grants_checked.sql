CREATE TABLE cfg_grants_checked AS
WITH grants AS (
    SELECT s.*,
           min(s.row_number) OVER (PARTITION BY s.vendor, lower(s.grant_id)) AS first_row
    FROM ingest.stg_grants s
    JOIN current_config_files c ON c.source = 'grants' AND c.file_id = s.file_id
)
SELECT
    * EXCLUDE (first_row),
    CASE
        WHEN client_id NOT IN (SELECT client_id FROM cfg_clients)
            THEN format('client_id ''{}'' is not in clients.csv', client_id)
        WHEN row_number <> first_row
            THEN format('grant_id {} is already used by row {}', grant_id, first_row)
        WHEN expires_on <= effective_on
            THEN 'expires_on must be after effective_on'
        -- A gift, earned or adjustment lot costs the client nothing: a price on one is a
        -- purchase written with the wrong kind, or a price in the wrong row.
        WHEN price_per_credit IS NOT NULL AND kind <> 'purchase'
            THEN format('price_per_credit is for purchase grants only (this one is {}); '
                        'leave it blank or make the kind purchase', kind)
    END AS problem
FROM grants;
