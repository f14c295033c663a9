-- The charges each target may undo, in undo order: most recent first.
CREATE TABLE reversal_targets AS
WITH targets AS (
    SELECT DISTINCT target, vendor, target_export, target_seq FROM reversals
),
members AS (
    SELECT t.target, c.seq, c.credits, c.exported_at
    FROM targets t
    JOIN charges c ON c.vendor = t.vendor AND c.export_id = t.target_export AND c.is_charge
    UNION ALL
    SELECT t.target, c.seq, c.credits, c.exported_at
    FROM targets t JOIN charges c ON c.seq = t.target_seq
)
SELECT
    target,
    seq,
    credits,
    sum(credits) OVER (PARTITION BY target ORDER BY exported_at DESC, seq DESC
                       ROWS UNBOUNDED PRECEDING) - credits AS undo_position
FROM members;
