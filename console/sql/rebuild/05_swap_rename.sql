-- Fallback for databases without EXCHANGE TABLES (Ordinary engine): one multi-table RENAME
-- per pair through a temporary name. Not atomic against a concurrent reader the way EXCHANGE
-- is (a reader can see the table missing for an instant), which is why EXCHANGE is tried first.
RENAME TABLE {db}.net_flows TO {db}.net_flows_swap_tmp, {db}.net_flows_staging TO {db}.net_flows, {db}.net_flows_swap_tmp TO {db}.net_flows_staging;
RENAME TABLE {db}.positions TO {db}.positions_swap_tmp, {db}.positions_staging TO {db}.positions, {db}.positions_swap_tmp TO {db}.positions_staging;
RENAME TABLE {db}.wallet_pnl TO {db}.wallet_pnl_swap_tmp, {db}.wallet_pnl_staging TO {db}.wallet_pnl, {db}.wallet_pnl_swap_tmp TO {db}.wallet_pnl_staging;
