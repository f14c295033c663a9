-- A month opens with what the previous month closed with.
SELECT vendor, client_id, month, opening_balance, previous_closing
FROM (
    SELECT *, lag(closing_balance) OVER (PARTITION BY vendor, client_id ORDER BY month) AS previous_closing
    FROM monthly_balances
)
WHERE previous_closing IS NOT NULL AND previous_closing <> opening_balance;
