CREATE TABLE cfg_contracts AS
SELECT * EXCLUDE (problem) FROM cfg_contracts_checked WHERE problem IS NULL;
