-- Each mart holds one row per its declared grain. entries_to_audit: the ledger, or an
-- incremental night's entries with any entry sharing their ids (the rest was audited before).
SELECT 'monthly_balances' AS mart, count(*) - count(DISTINCT (vendor, client_id, month)) AS extra_rows
FROM monthly_balances HAVING extra_rows > 0
UNION ALL
-- Entry ids are counted exactly only if their hashes are not all distinct (distinct hashes
-- mean distinct ids): counting 10M distinct hashes takes two thirds of the time.
SELECT 'ledger_entries', count(*) - count(DISTINCT e.entry_id) FROM entries_to_audit e
WHERE (SELECT count(*) > count(DISTINCT hash(entry_id)) FROM entries_to_audit)
HAVING count(*) - count(DISTINCT e.entry_id) > 0
UNION ALL
SELECT 'forfeitures', count(*) - count(DISTINCT (vendor, client_id, lot_id)) FROM forfeitures HAVING count(*) - count(DISTINCT (vendor, client_id, lot_id)) > 0
UNION ALL
SELECT 'quarantine', count(*) - count(DISTINCT (file_id, row_number)) FROM quarantine HAVING count(*) - count(DISTINCT (file_id, row_number)) > 0
UNION ALL
SELECT 'alerts', count(*) - count(DISTINCT alert_id) FROM alerts HAVING count(*) - count(DISTINCT alert_id) > 0;
