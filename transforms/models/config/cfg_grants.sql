CREATE TABLE cfg_grants AS SELECT * EXCLUDE (problem) FROM cfg_grants_checked WHERE problem IS NULL;
