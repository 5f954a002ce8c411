-- Gate: duplicate keys after merge (0). ReplacingMergeTree collapses rows with the same key,
-- so after FINAL each key shows one row — but if the same key was written with different
-- content (a reorg, a decoding bug, a wrong re-fetch) FINAL silently keeps one of them.
-- This reads the raw rows (no FINAL) and counts keys carrying more than one distinct
-- content (created_at excluded). value = conflicting keys; n = raw rows in the four tables.
--
-- Statement 1, the screen: when no table has more raw rows than keys (count() = count()
-- FINAL), no key can carry two contents and the gate passes without statement 2's
-- GROUP BY over every raw row (~8 CPU-s on 20 M rows).
--
-- Statement 2 reads only the tables whose screen is not clean (a table where count() =
-- count() FINAL has no repeated key: its WHERE is constant false and nothing is read), and
-- groups in the tables' own order (tx_hash, log_index[, batch_index]): one key at a time, on
-- one thread, instead of a hash table of every key. At 1048 days (21.5 M raw rows, 2,000
-- re-fetched USDC rows, the tables as a backfill leaves them, fresh process): +1,017 MB and
-- 11.6 s as one hash GROUP BY over the four tables, +172 MB and 6.8 s now (bench/RESULTS.md 2f).
SELECT (SELECT count() FROM {db}.erc20_transfers) = (SELECT count() FROM {db}.erc20_transfers FINAL)
       AND (SELECT count() FROM {db}.erc1155_transfers) = (SELECT count() FROM {db}.erc1155_transfers FINAL)
       AND (SELECT count() FROM {db}.condition_resolutions) = (SELECT count() FROM {db}.condition_resolutions FINAL)
       AND (SELECT count() FROM {db}.token_registrations) = (SELECT count() FROM {db}.token_registrations FINAL) AS clean,
       (SELECT count() FROM {db}.erc20_transfers) + (SELECT count() FROM {db}.erc1155_transfers)
       + (SELECT count() FROM {db}.condition_resolutions) + (SELECT count() FROM {db}.token_registrations) AS n;

SELECT
    toFloat64(sum(conflicts)) AS value,
    (SELECT count() FROM {db}.erc20_transfers) + (SELECT count() FROM {db}.erc1155_transfers)
    + (SELECT count() FROM {db}.condition_resolutions) + (SELECT count() FROM {db}.token_registrations) AS n,
    arrayStringConcat(arrayFilter(x -> x != '', groupArray(example)), '; ') AS detail
FROM (
    SELECT t, countIf(h_min != h_max) AS conflicts,
           if(conflicts > 0, concat(t, ': ', toString(conflicts), ' key(s), e.g. ',
                                    anyIf(k, h_min != h_max)), '') AS example
    FROM (
        SELECT 'erc20_transfers' AS t, concat(tx_hash, '#', toString(log_index)) AS k,
               min(cityHash64(token, from_address, to_address, value, block_number)) AS h_min,
               max(cityHash64(token, from_address, to_address, value, block_number)) AS h_max
        FROM {db}.erc20_transfers
        WHERE (SELECT count() FROM {db}.erc20_transfers) != (SELECT count() FROM {db}.erc20_transfers FINAL)
        GROUP BY tx_hash, log_index
        UNION ALL
        SELECT 'erc1155_transfers', concat(tx_hash, '#', toString(log_index), '.', toString(batch_index)),
               min(cityHash64(contract, operator, from_address, to_address, token_id, value, block_number)),
               max(cityHash64(contract, operator, from_address, to_address, token_id, value, block_number))
        FROM {db}.erc1155_transfers
        WHERE (SELECT count() FROM {db}.erc1155_transfers) != (SELECT count() FROM {db}.erc1155_transfers FINAL)
        GROUP BY tx_hash, log_index, batch_index
        UNION ALL
        SELECT 'condition_resolutions', concat(tx_hash, '#', toString(log_index)),
               min(cityHash64(condition_id, payout_numerators, block_number)),
               max(cityHash64(condition_id, payout_numerators, block_number))
        FROM {db}.condition_resolutions
        WHERE (SELECT count() FROM {db}.condition_resolutions) != (SELECT count() FROM {db}.condition_resolutions FINAL)
        GROUP BY tx_hash, log_index
        UNION ALL
        SELECT 'token_registrations', concat(tx_hash, '#', toString(log_index)),
               min(cityHash64(contract, token0, token1, condition_id, block_number)),
               max(cityHash64(contract, token0, token1, condition_id, block_number))
        FROM {db}.token_registrations
        WHERE (SELECT count() FROM {db}.token_registrations) != (SELECT count() FROM {db}.token_registrations FINAL)
        GROUP BY tx_hash, log_index
    )
    GROUP BY t
)
SETTINGS optimize_aggregation_in_order = 1, max_threads = 1, max_block_size = 8192;
