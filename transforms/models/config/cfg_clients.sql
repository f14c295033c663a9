CREATE TABLE cfg_clients AS
SELECT * EXCLUDE (problem) FROM cfg_clients_checked WHERE problem IS NULL;
