-- Every exported (or purchased, or revealed) record, from whichever vendor, with the
-- client it is attributed to. Grain: one row per record. Each vendor's adapter
-- (vendors/<vendor>.sql) gives records_<vendor> in one shape; transforms/adapters.py unions them as
-- vendor_records and their quarantines as vendor_quarantine.

-- Attribution: the users.csv row valid on the export's date; nobody -> client 'unassigned'.
-- A view: ledger.mark_charges keeps the records once, in the order they are charged.
CREATE VIEW exported_records AS
SELECT
    e.* EXCLUDE (problem),
    coalesce(u.client_id, 'unassigned') AS client_id
FROM vendor_records e
LEFT JOIN cfg_users u
  ON u.vendor = e.vendor AND u.user = e.user
 AND coalesce(u.valid_from, DATE '0001-01-01') <= e.exported_at::DATE
 AND e.exported_at::DATE < coalesce(u.valid_to, DATE '9999-12-31')
WHERE e.problem IS NULL;
