-- Gate: duplicate keys after merge (0). ReplacingMergeTree collapses rows with the same key,
-- so after FINAL each key shows one row — but if the same key was written with different
-- content (a reorg, a decoding bug, a wrong re-fetch) FINAL silently keeps one of them.
-- This reads the raw rows (no FINAL) and counts keys carrying more than one distinct
-- content (created_at excluded). value = conflicting keys; n = raw rows read.
--
-- Statement 1, the screen: when no table has more raw rows than keys (count() = count()
-- FINAL), no key can carry two contents and the gate passes without statement 2's
-- GROUP BY over every raw row (~8 CPU-s on 20 M rows).
SELECT (SELECT count() FROM {db}.erc20_transfers) = (SELECT count() FROM {db}.erc20_transfers FINAL)
       AND (SELECT count() FROM {db}.erc1155_transfers) = (SELECT count() FROM {db}.erc1155_transfers FINAL)
       AND (SELECT count() FROM {db}.condition_resolutions) = (SELECT count() FROM {db}.condition_resolutions FINAL)
       AND (SELECT count() FROM {db}.token_registrations) = (SELECT count() FROM {db}.token_registrations FINAL) AS clean,
       (SELECT count() FROM {db}.erc20_transfers) + (SELECT count() FROM {db}.erc1155_transfers)
       + (SELECT count() FROM {db}.condition_resolutions) + (SELECT count() FROM {db}.token_registrations) AS n;

SELECT
    toFloat64(sum(conflicts)) AS value,
    sum(raw_rows) AS n,
    arrayStringConcat(arrayFilter(x -> x != '', groupArray(example)), '; ') AS detail
FROM (
    SELECT t, countIf(h_min != h_max) AS conflicts, sum(c) AS raw_rows,
           if(conflicts > 0, concat(t, ': ', toString(conflicts), ' key(s), e.g. ',
                                    anyIf(k, h_min != h_max)), '') AS example
    FROM (
        SELECT 'erc20_transfers' AS t, concat(tx_hash, '#', toString(log_index)) AS k, count() AS c,
               min(cityHash64(token, from_address, to_address, value, block_number)) AS h_min,
               max(cityHash64(token, from_address, to_address, value, block_number)) AS h_max
        FROM {db}.erc20_transfers GROUP BY tx_hash, log_index
        UNION ALL
        SELECT 'erc1155_transfers', concat(tx_hash, '#', toString(log_index), '.', toString(batch_index)), count(),
               min(cityHash64(contract, operator, from_address, to_address, token_id, value, block_number)),
               max(cityHash64(contract, operator, from_address, to_address, token_id, value, block_number))
        FROM {db}.erc1155_transfers GROUP BY tx_hash, log_index, batch_index
        UNION ALL
        SELECT 'condition_resolutions', concat(tx_hash, '#', toString(log_index)), count(),
               min(cityHash64(condition_id, payout_numerators, block_number)),
               max(cityHash64(condition_id, payout_numerators, block_number))
        FROM {db}.condition_resolutions GROUP BY tx_hash, log_index
        UNION ALL
        SELECT 'token_registrations', concat(tx_hash, '#', toString(log_index)), count(),
               min(cityHash64(contract, token0, token1, condition_id, block_number)),
               max(cityHash64(contract, token0, token1, condition_id, block_number))
        FROM {db}.token_registrations GROUP BY tx_hash, log_index
    )
    GROUP BY t
);
