-- Statements the close of each month issued, as issued (rule 8: a closed month never
-- changes): a later rendering of the month writes these bytes again.
CREATE TABLE closed_statements AS
SELECT month, client_id, file_name, sha256, closed_at, document, csv, pdf, pdf_sha256
FROM ingest.closed_statements
ORDER BY month, client_id;
