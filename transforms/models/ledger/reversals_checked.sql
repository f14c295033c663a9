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
