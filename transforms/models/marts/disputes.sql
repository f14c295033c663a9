-- What to put in a support ticket. Grain: vendor x month x export (without export ids: the file).
CREATE TABLE disputes AS
SELECT
    vendor,
    month,
    coalesce(repeat_export_id, repeat_source_file) AS export_or_file,
    string_agg(record_key, ' ' ORDER BY repeat_source_row) AS record_ids,
    sum(credits_disputable)::BIGINT AS credits_to_reverse,
    count(*) FILTER (WHERE cross_client) AS cross_client_records
FROM duplicate_reexports
WHERE credits_disputable > 0
GROUP BY ALL
ORDER BY ALL;
