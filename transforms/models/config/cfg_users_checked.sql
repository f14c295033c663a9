-- A user may move between clients: rows are [valid_from, valid_to) and must not overlap.
CREATE TABLE cfg_users_checked AS
WITH users AS (
    SELECT s.*
    FROM ingest.stg_users s
    JOIN current_config_files c ON c.source = 'users' AND c.file_id = s.file_id
),
overlapping AS (
    SELECT later.file_id, later.row_number, min(earlier.row_number) AS overlapping_row
    FROM users later
    JOIN users earlier
      ON earlier.vendor = later.vendor AND earlier.user = later.user
     AND earlier.row_number < later.row_number
     AND coalesce(earlier.valid_from, DATE '0001-01-01') < coalesce(later.valid_to, DATE '9999-12-31')
     AND coalesce(later.valid_from, DATE '0001-01-01') < coalesce(earlier.valid_to, DATE '9999-12-31')
    GROUP BY ALL
)
SELECT
    u.*,
    CASE
        WHEN u.client_id NOT IN (SELECT client_id FROM cfg_clients) AND u.client_id <> 'unassigned'
            THEN format('client_id ''{}'' is not in clients.csv', u.client_id)
        WHEN u.valid_to <= u.valid_from
            THEN 'valid_to must be after valid_from'
        WHEN o.overlapping_row IS NOT NULL
            THEN format('{} is already mapped for these dates by users.csv row {}',
                        u.user, o.overlapping_row)
    END AS problem
FROM users u
LEFT JOIN overlapping o USING (file_id, row_number);
