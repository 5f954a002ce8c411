-- Step 4: rows per data table after merge (distinct keys) and raw.
SELECT 'erc20_transfers' AS t, (SELECT count() FROM {db}.erc20_transfers FINAL) AS rows, (SELECT count() FROM {db}.erc20_transfers) AS raw_rows
UNION ALL
SELECT 'erc1155_transfers', (SELECT count() FROM {db}.erc1155_transfers FINAL), (SELECT count() FROM {db}.erc1155_transfers)
UNION ALL
SELECT 'condition_resolutions', (SELECT count() FROM {db}.condition_resolutions FINAL), (SELECT count() FROM {db}.condition_resolutions)
UNION ALL
SELECT 'token_registrations', (SELECT count() FROM {db}.token_registrations FINAL), (SELECT count() FROM {db}.token_registrations)
UNION ALL
SELECT 'net_flows', (SELECT count() FROM {db}.net_flows), (SELECT count() FROM {db}.net_flows)
UNION ALL
SELECT 'positions', (SELECT count() FROM {db}.positions), (SELECT count() FROM {db}.positions)
UNION ALL
SELECT 'wallet_pnl', (SELECT count() FROM {db}.wallet_pnl), (SELECT count() FROM {db}.wallet_pnl);
