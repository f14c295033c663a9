-- Rows an adapter could not use, and records it flagged (e.g. no key, dated after as-of).
CREATE TABLE exports_quarantine AS
SELECT file_id, row_number, reason FROM vendor_quarantine
UNION ALL
SELECT file_id, row_number, problem FROM vendor_records WHERE problem IS NOT NULL;
