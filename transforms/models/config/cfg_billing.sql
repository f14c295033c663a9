-- How the agency re-bills each client (transforms/config_checks.py stops the run on any
-- row it cannot use, so these rows are all usable): a row naming a vendor beats the
-- client's row for every vendor.
CREATE TABLE cfg_billing AS
SELECT s.*
FROM ingest.stg_billing s
JOIN current_config_files c ON c.source = 'billing' AND c.file_id = s.file_id;
