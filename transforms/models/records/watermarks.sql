-- The latest export time charged (or found a free re-export) per vendor. An incremental
-- night (transforms/incremental.py) takes only records after it: an earlier one could change
-- charges already made, so it needs a full rebuild.
CREATE TABLE watermarks AS
SELECT vendor, max(exported_at) AS watermark FROM charges GROUP BY ALL;
