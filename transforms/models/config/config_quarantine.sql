-- The agency's configuration as it stands now (the cfg_* models, each from the staged rows
-- of the current config files), with rows that cannot be used moved to quarantine: these.

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
