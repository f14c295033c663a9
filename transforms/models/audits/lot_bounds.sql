-- 0 <= credits left <= credits for every lot; an expired lot has nothing left; no lot is
-- drawn outside its window. entries_to_audit: the ledger, or an incremental night's
-- entries (the rest was audited when it was published).
SELECT lot_id, credits, credits_left, status FROM credit_lots
WHERE credits_left < 0 OR credits_left > credits OR (status = 'expired' AND credits_left <> 0)
UNION ALL
SELECT e.lot_id, l.credits, NULL, 'drawn outside window' FROM entries_to_audit e JOIN lots l USING (lot_id)
WHERE e.entry_type = 'consume'
  AND (e.effective_at < l.effective_on::TIMESTAMP OR e.effective_at >= l.expires_on::TIMESTAMP);
