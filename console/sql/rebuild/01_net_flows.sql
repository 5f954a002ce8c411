-- Step 1: materialise the classified net flows (the shared view) into the staging table.
-- gates.fill_flows runs the INSERT once per chunk, {chunk} = a tx_hash range (gates.tx_range,
-- or `1`); {threads} is 1 when there are several chunks (memory, below) and 0 (every core)
-- when the whole store is one chunk: its memory is bounded by its size.
-- Net flows are per (tx, wallet), so a partition by tx is exact, and ClickHouse pushes the
-- filter below the view's GROUP BY down to the transfer tables' primary key (tx_hash first),
-- so each chunk reads and aggregates only its own txs — peak memory is bounded by the chunk
-- size instead of growing with the whole history, and small chunks cost no extra scans.
-- Memory (issue 8, the whole run < 1 GB RSS; embedded chDB lives in the engine's process):
-- one thread (each aggregating thread holds its own state), and small insert blocks — by
-- default an INSERT ... SELECT squashes ~1 M wide rows per block per insert thread before
-- writing a part, which alone cost ~0.8 GB RSS on a 7 M-row chunk (bench/rebuild.py);
-- 64 K-row / 16 MiB blocks cost no measurable time (the parts merge in the background).
-- The relaxed gates reuse this INSERT (into their own scratch table, console/engine/gates.py).
TRUNCATE TABLE IF EXISTS {db}.net_flows_staging;

INSERT INTO {db}.net_flows_staging
    (tx_hash, block_number, log_index, block_time, day_idx, wallet, token_id,
     token_delta, usdc_delta, n_tokens, token_legs, usdc_legs, kind, confidence,
     clean, price, price_e6, price_e18)
SELECT tx_hash, block_number, log_index, block_time, day_idx, wallet, token_id,
       token_delta, usdc_delta, n_tokens, token_legs, usdc_legs, kind, confidence,
       clean, price, price_e6, price_e18
FROM {db}.net_flows_live
WHERE {chunk}
SETTINGS max_threads = {threads}, max_insert_threads = 1, min_insert_block_size_rows = 65536,
         min_insert_block_size_bytes = 16777216;
