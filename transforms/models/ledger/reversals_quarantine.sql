CREATE TABLE reversals_quarantine AS
SELECT file_id, row_number, problem AS reason FROM reversals_checked WHERE problem IS NOT NULL;
