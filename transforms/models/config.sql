-- The agency's configuration as it stands now, with rows that cannot be used moved to
-- quarantine. Grain: one row per staged row of the current config files.
-- Reads: ingest.stg_<config>, current_config_files (the config files present this run).

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

CREATE TABLE cfg_clients AS
SELECT * EXCLUDE (problem) FROM cfg_clients_checked WHERE problem IS NULL;

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

CREATE TABLE cfg_users AS SELECT * EXCLUDE (problem) FROM cfg_users_checked WHERE problem IS NULL;

CREATE TABLE cfg_contracts_checked AS
SELECT
    s.*,
    CASE WHEN s.ends_on <= s.starts_on THEN 'ends_on must be after starts_on' END AS problem
FROM ingest.stg_contracts s
JOIN current_config_files c ON c.source = 'contracts' AND c.file_id = s.file_id;

CREATE TABLE cfg_contracts AS
SELECT * EXCLUDE (problem) FROM cfg_contracts_checked WHERE problem IS NULL;

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

CREATE TABLE cfg_allocations AS
SELECT * EXCLUDE (problem) FROM cfg_allocations_checked WHERE problem IS NULL;

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

CREATE TABLE cfg_grants AS SELECT * EXCLUDE (problem) FROM cfg_grants_checked WHERE problem IS NULL;

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

-- How the agency re-bills each client (transforms/config_checks.py stops the run on any
-- row it cannot use, so these rows are all usable): a row naming a vendor beats the
-- client's row for every vendor.
CREATE TABLE cfg_billing AS
SELECT s.*
FROM ingest.stg_billing s
JOIN current_config_files c ON c.source = 'billing' AND c.file_id = s.file_id;

CREATE TABLE config_quarantine AS
SELECT file_id, row_number, problem AS reason FROM cfg_clients_checked WHERE problem IS NOT NULL
UNION ALL
SELECT file_id, row_number, reason FROM cfg_reversal_repeats
UNION ALL
SELECT file_id, row_number, problem AS reason FROM cfg_users_checked WHERE problem IS NOT NULL
UNION ALL
SELECT file_id, row_number, problem FROM cfg_contracts_checked WHERE problem IS NOT NULL
UNION ALL
SELECT file_id, row_number, problem FROM cfg_allocations_checked WHERE problem IS NOT NULL
UNION ALL
SELECT file_id, row_number, problem FROM cfg_grants_checked WHERE problem IS NOT NULL;
