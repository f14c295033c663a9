-- DOMAIN rule 10: opening + granted + reversed - consumed - forfeited = closing, and
-- charged = consumed + overage. Returns the months that break it.
SELECT vendor, client_id, month, opening_balance, available_credits, reversed_credits,
       consumed_credits, forfeited_credits, closing_balance
FROM monthly_balances
WHERE available_credits + reversed_credits - consumed_credits - forfeited_credits <> closing_balance
   OR charged_credits <> consumed_credits + overage_credits
   OR closing_balance < 0;
