-- Step 1: materialise the classified net flows (the shared view) into the staging table.
-- rebuild.py runs the INSERT once per chunk, {chunk} = `cityHash64(tx_hash) % K = k`
-- (or `1`): net flows are per (tx, wallet), so a partition by tx is exact, and ClickHouse
-- pushes the filter below the view's GROUP BY, so each chunk aggregates only its own txs —
-- peak memory is bounded by the chunk size instead of growing with the whole history.
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
SETTINGS max_insert_threads = 2;
