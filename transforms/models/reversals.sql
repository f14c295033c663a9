-- DOMAIN rule 5, first half: which charges a reversal gives credits back for.
-- A reference is an Export ID (all of that export's charges) or a record ID (its latest
-- charge before the reversal). Reversals of one target are applied in date order, each
-- taking the target's most recent charges not yet reversed. A reversal that matches no
-- charge, or asks for more credits than are left to reverse, is quarantined, not applied.
-- Grain of reversal_targets: one row per (reversal, charge it may undo).
-- Reads: ingest.stg_reversals, charges.

CREATE TABLE cfg_reversals AS
SELECT s.*, f.path AS source_file, f.ingested_at
FROM ingest.stg_reversals s
JOIN current_config_files c ON c.source = 'reversals' AND c.file_id = s.file_id
JOIN ingest.ingest_files f ON f.file_id = s.file_id AND f.status = 'loaded'
WHERE (s.file_id, s.row_number) NOT IN (SELECT (file_id, row_number) FROM cfg_reversal_repeats);

CREATE TABLE reversals_checked AS
WITH by_export AS (
    SELECT r.file_id, r.row_number, 'export:' || c.vendor || ':' || c.export_id AS target,
           c.export_id AS target_export, NULL::BIGINT AS target_seq,
           c.seq, c.credits, c.exported_at, c.client_id
    FROM cfg_reversals r
    JOIN charges c ON c.vendor = r.vendor AND c.export_id = r.reference AND c.is_charge
),
by_record AS (
    -- Only when the reference is not an Export ID: the record's latest charge before it.
    SELECT r.file_id, r.row_number, 'charge:' || max_by(c.seq, c.exported_at) AS target,
           NULL AS target_export, max_by(c.seq, c.exported_at) AS target_seq,
           max_by(c.seq, c.exported_at) AS seq, max_by(c.credits, c.exported_at) AS credits,
           max(c.exported_at) AS exported_at, max_by(c.client_id, c.exported_at) AS client_id
    FROM cfg_reversals r
    JOIN charges c ON c.vendor = r.vendor AND c.record_key = record_id(r.reference) AND c.is_charge
     AND c.exported_at < r.reversed_on::TIMESTAMP
    WHERE (r.file_id, r.row_number) NOT IN (SELECT (file_id, row_number) FROM by_export)
    GROUP BY r.file_id, r.row_number
),
matched AS (SELECT * FROM by_export UNION ALL SELECT * FROM by_record),
-- One charge must not be given back twice through two references: a record's reversal is
-- refused when its export is reversed by Export ID.
record_in_reversed_export AS (
    SELECT b.file_id, b.row_number, any_value(e.export_id) AS export_id
    FROM by_record b
    JOIN charges c ON c.seq = b.seq
    JOIN (SELECT DISTINCT c2.vendor, c2.export_id FROM by_export x JOIN charges c2 USING (seq)) e
      ON e.vendor = c.vendor AND e.export_id = c.export_id
    GROUP BY ALL
),
per_reversal AS (
    SELECT file_id, row_number, any_value(target) AS target, any_value(target_export) AS target_export,
           any_value(target_seq) AS target_seq, sum(credits) AS charged,
           max(exported_at) AS last_charged_at, any_value(client_id) AS client_id
    FROM matched GROUP BY ALL
),
ordered AS (
    SELECT
        r.*,
        p.target, p.target_export, p.target_seq, p.charged, p.last_charged_at, p.client_id,
        sum(r.credits) OVER (
            PARTITION BY p.target ORDER BY r.reversed_on, r.ticket, r.row_number
            ROWS UNBOUNDED PRECEDING
        ) AS reversed_upto
    FROM cfg_reversals r
    LEFT JOIN per_reversal p USING (file_id, row_number)
    WHERE (r.file_id, r.row_number) NOT IN (SELECT (file_id, row_number) FROM record_in_reversed_export)
),
refused AS (
    SELECT r.*, NULL AS target, NULL AS target_export, NULL::BIGINT AS target_seq, NULL::BIGINT AS charged,
           NULL::TIMESTAMP AS last_charged_at, NULL AS client_id, NULL::BIGINT AS reversed_upto,
           format('its charge is in export {}, which is already reversed by Export ID; '
                  'reverse by one reference only', x.export_id) AS problem
    FROM cfg_reversals r JOIN record_in_reversed_export x USING (file_id, row_number)
)
SELECT
    *,
    CASE
        WHEN target IS NULL
            THEN format('reference {} matches no charged export or record of {}', reference, vendor)
        WHEN reversed_on::TIMESTAMP <= last_charged_at
            THEN format('reversed_on {} is not after the charge it reverses ({})', reversed_on,
                        strftime(last_charged_at, '%Y-%m-%d %H:%M'))
        WHEN reversed_upto > charged
            THEN format('reverses {} credits but {} charged only {}{}', credits, reference, charged,
                        CASE WHEN reversed_upto - credits > 0
                             THEN format(' ({} already reversed)', reversed_upto - credits) ELSE '' END)
        WHEN reversed_on > getvariable('as_of')
            THEN format('reversed_on {} is after the as-of date {}; it counts in a later run',
                        reversed_on, getvariable('as_of'))
    END AS problem
FROM ordered
UNION ALL BY NAME
SELECT * FROM refused;

-- The reversals applied, each covering [reversed_upto - credits, reversed_upto) of its
-- target's charged credits counted back from the most recent.
CREATE TABLE reversals AS
SELECT
    file_id, row_number, vendor, client_id, ticket, reference, target, target_export, target_seq, credits,
    reversed_on, reversed_on::TIMESTAMP AS reversed_at, reversed_upto - credits AS undo_from,
    reversed_upto AS undo_to, source_file, ingested_at
FROM reversals_checked WHERE problem IS NULL;

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

CREATE TABLE reversals_quarantine AS
SELECT file_id, row_number, problem AS reason FROM reversals_checked WHERE problem IS NOT NULL;
