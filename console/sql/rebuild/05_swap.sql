-- Step 3c: swap staging <-> production. EXCHANGE TABLES is atomic per pair on an Atomic
-- database (chDB's default and ClickHouse's since 20.10); after it the staging names hold the
-- previous production data until the next rebuild truncates them.
EXCHANGE TABLES {db}.net_flows_staging AND {db}.net_flows;
EXCHANGE TABLES {db}.positions_staging AND {db}.positions;
EXCHANGE TABLES {db}.wallet_pnl_staging AND {db}.wallet_pnl;
