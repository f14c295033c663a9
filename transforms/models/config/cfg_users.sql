CREATE TABLE cfg_users AS SELECT * EXCLUDE (problem) FROM cfg_users_checked WHERE problem IS NULL;
