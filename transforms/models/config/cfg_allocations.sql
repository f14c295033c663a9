CREATE TABLE cfg_allocations AS
SELECT * EXCLUDE (problem) FROM cfg_allocations_checked WHERE problem IS NULL;
