-- Credits the agency may not owe, and credits its people wasted. Grain: one re-export or
-- duplicate: a record exported (or bought) again after its first charge.
--   free_reexport      a re-export inside the window (rule first_in_window): free by the
--                      rules;
--   charged_reexport   a free re-export the vendor charged anyway: what it billed for the
--                      export (vendor_billed) exceeds the export's new records, the excess
--                      laid on its re-exports in file order; disputable;
--   repeat_purchase    a record the agency had already bought, bought again, at a vendor
--                      whose repeats are matched (rule per_row, repeat_purchases in its
--                      header TOML); charged, disputable.
-- cross_client: the repeat is by another client than the first charge.
-- credits_reversed: what the vendor already gave back for the repeat's charge (reversals.csv);
-- it is no longer disputable, so the agency never asks for the same credit twice.

CREATE TABLE duplicate_reexports AS
WITH firsts AS (
    -- The charge each repeat comes after: the charge that opened a re-export's window, or a
    -- repeat purchase's first purchase.
    SELECT c.seq, f.client_id AS first_client_id, f.export_id AS first_export_id,
           f.exported_at AS first_exported_at, f.source_file AS first_source_file,
           f.row_number AS first_source_row
    FROM charges c
    JOIN (
        SELECT h.seq, h.client_id, h.export_id, h.exported_at, rf.source_file, h.row_number
        FROM charges h
        LEFT JOIN record_files rf
          ON rf.file_id = h.file_id AND rf.export_id IS NOT DISTINCT FROM h.export_id
        -- only the charges some re-export comes after (not every record's file)
        WHERE h.seq IN (SELECT charge_seq FROM charges WHERE NOT is_charge)
        UNION ALL  -- charged on an earlier night (incremental nights; empty in a full rebuild)
        SELECT seq, client_id, export_id, exported_at, source_file, row_number FROM prior_charges
    ) f ON f.seq = c.charge_seq
    WHERE NOT c.is_charge
    UNION ALL
    SELECT seq, first_value(client_id) OVER w, first_value(export_id) OVER w,
           first_value(exported_at) OVER w, first_value(source_file) OVER w,
           first_value(row_number) OVER w
    FROM (
        SELECT h.seq, h.vendor, h.record_key, h.client_id, h.export_id, h.exported_at,
               rf.source_file, h.row_number
        FROM charges h
        LEFT JOIN record_files rf
          ON rf.file_id = h.file_id AND rf.export_id IS NOT DISTINCT FROM h.export_id
        -- repeat purchases are per_row, rows charging their own credits: the others are
        -- left out before the join
        WHERE h.row_credits IS NOT NULL
        UNION ALL  -- bought on an earlier night (incremental nights; empty in a full rebuild)
        SELECT seq, vendor, record_key, client_id, export_id, exported_at, source_file,
               row_number
        FROM prior_charges
    )
    WHERE vendor IN (SELECT vendor FROM vendor_rules WHERE repeat_purchases)
    WINDOW w AS (PARTITION BY vendor, record_key ORDER BY exported_at, seq)
    QUALIFY row_number() OVER w > 1
),
overcharged AS (
    -- Exports the vendor billed more for than their new records.
    SELECT b.vendor, b.export_id, b.credits_billed - coalesce(sum(c.credits), 0) AS excess
    FROM vendor_billed b
    LEFT JOIN charges c ON c.vendor = b.vendor AND c.export_id = b.export_id
    GROUP BY b.vendor, b.export_id, b.credits_billed
    HAVING b.credits_billed > coalesce(sum(c.credits), 0)
),
ranked AS (
    -- The excess falls on an over-charged export's re-exports in file order. Only those
    -- are ranked: a window over every re-export, carrying all its columns, cost 1.8 s at 10M.
    SELECT c.seq, o.excess,
           row_number() OVER (PARTITION BY c.vendor, c.export_id
                              ORDER BY c.file_id, c.row_number) AS reexport_rank
    FROM charges c JOIN overcharged o USING (vendor, export_id)
    WHERE NOT c.is_charge
),
given_back AS (
    -- The part of each reversal's span [undo_from, undo_to) that falls on a charge's span.
    SELECT t.seq,
           sum(least(t.undo_position + t.credits, r.undo_to)
               - greatest(t.undo_position, r.undo_from)) AS credits_reversed,
           string_agg(DISTINCT r.ticket, ' ' ORDER BY r.ticket) AS reversal_tickets
    FROM reversal_targets t
    JOIN reversals r USING (target)
    WHERE t.undo_position < r.undo_to AND t.undo_position + t.credits > r.undo_from
    GROUP BY t.seq
),
repeats AS (
    SELECT
        c.*,
        rf.source_file,
        f.* EXCLUDE (seq),
        k.excess,
        k.reexport_rank,
        coalesce(g.credits_reversed, 0) AS credits_reversed,
        g.reversal_tickets
    FROM charges c
    JOIN firsts f USING (seq)
    LEFT JOIN record_files rf
      ON rf.file_id = c.file_id AND rf.export_id IS NOT DISTINCT FROM c.export_id
    LEFT JOIN ranked k USING (seq)
    LEFT JOIN given_back g USING (seq)
    -- every repeat is a re-export (no charge) or a repeat purchase, a row charging its own
    -- credits: no need to probe other charges
    WHERE NOT c.is_charge OR c.row_credits IS NOT NULL
)
SELECT
    r.vendor,
    r.record_type,
    r.record_key,
    CASE
        WHEN r.is_charge THEN 'repeat_purchase'  -- a re-export is never a charge
        WHEN r.excess >= r.reexport_rank THEN 'charged_reexport'
        ELSE 'free_reexport'
    END AS kind,
    r.first_client_id,
    r.first_export_id,
    r.first_exported_at,
    r.first_source_file,
    r.first_source_row,
    r.client_id AS repeat_client_id,
    r.user AS repeat_user,
    r.export_id AS repeat_export_id,
    r.exported_at AS repeat_exported_at,
    date_trunc('month', r.exported_at)::DATE AS month,
    r.source_file AS repeat_source_file,
    r.row_number AS repeat_source_row,
    r.client_id <> r.first_client_id AS cross_client,
    r.is_charge OR coalesce(r.excess >= r.reexport_rank, false) AS charged_by_vendor,
    r.credits_reversed::BIGINT AS credits_reversed,
    r.reversal_tickets,
    CASE
        WHEN r.is_charge THEN greatest(r.credits - r.credits_reversed, 0)
        WHEN r.excess >= r.reexport_rank THEN 1
        ELSE 0
    END::BIGINT AS credits_disputable
FROM repeats r
ORDER BY r.vendor, r.exported_at, r.record_key;
