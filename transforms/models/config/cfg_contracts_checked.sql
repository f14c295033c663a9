CREATE TABLE cfg_contracts_checked AS
SELECT
    s.*,
    CASE WHEN s.ends_on <= s.starts_on THEN 'ends_on must be after starts_on' END AS problem
FROM ingest.stg_contracts s
JOIN current_config_files c ON c.source = 'contracts' AND c.file_id = s.file_id;
