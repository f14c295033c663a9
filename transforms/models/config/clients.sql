-- The agency's clients, for reports. Grain: one row per client.
CREATE TABLE clients AS
SELECT client_id, coalesce(client_name, client_id) AS client_name FROM cfg_clients
UNION ALL
SELECT 'unassigned', 'Unassigned (exports by users in no users.csv row)'
ORDER BY client_id;
