-- DOMAIN rule 5, first half: which charges a reversal gives credits back for.
-- A reference is an Export ID (all of that export's charges) or a record ID (its latest
-- charge before the reversal). Reversals of one target are applied in date order, each
-- taking the target's most recent charges not yet reversed. A reversal that matches no
-- charge, or asks for more credits than are left to reverse, is quarantined, not applied.
-- Grain of reversal_targets: one row per (reversal, charge it may undo).
-- Reads: ingest.stg_reversals, charges.

-- The reversals applied, each covering [reversed_upto - credits, reversed_upto) of its
-- target's charged credits counted back from the most recent.
CREATE TABLE reversals AS
SELECT
    file_id, row_number, vendor, client_id, ticket, reference, target, target_export, target_seq, credits,
    reversed_on, reversed_on::TIMESTAMP AS reversed_at, reversed_upto - credits AS undo_from,
    reversed_upto AS undo_to, source_file, ingested_at
FROM reversals_checked WHERE problem IS NULL;
