-- Gate: exchange and adapter net flow per tx = 0, for each asset (the collateral and each
-- CTF token id). The exchanges and adapters only route value: whatever comes in within a
-- tx goes out within it. value = (tx, contract, asset) groups with a non-zero net;
-- n = legs (screen) or groups (full) checked. Legs: the view `watched_legs_live`
-- (console/sql/rebuild/00_views.sql).
--
-- Statement 1, the screen, is one streaming pass with no GROUP BY: every group gets a
-- pseudo-random 64-bit weight w = cityHash64(tx, contract, asset) and
-- sum(w * delta) = sum over groups of w * net. When every net is 0 the sum is 0; when one is
-- not, the sum is 0 only if the weighted nets cancel exactly (about 2^-64). A zero screen
-- passes the gate; anything else runs statement 2, the exact count with examples.
-- (Measured on 20 M rows: the full GROUP BY costs ~10 CPU-s, the screen ~1.)
-- Memory (issue 8): the screen reads both transfer tables with FINAL; on two threads in
-- 65K-row blocks it took +246 MB over the engine's base on the 1048-day store (the closing
-- gates' peak once the net flows were chunked finely), on one thread in 8K-row blocks +140 MB
-- (3.6 -> 6.5 s).
SELECT sum(toInt256(cityHash64(tx_hash, addr, asset_id)) * delta) = 0 AS clean, count() AS n
FROM {db}.watched_legs_live
WHERE {complete_days}
SETTINGS max_threads = 1, max_block_size = 8192;

SELECT
    toFloat64(countIf(net != 0)) AS value,
    count() AS n,
    arrayStringConcat(arraySlice(groupArrayIf(
        concat('tx ', tx_hash, ' ', addr, ' ', if(asset = '', concat('token ', toString(asset_id)), asset),
               ' net ', toString(net)), net != 0), 1, 3), '; ') AS detail
FROM (
    SELECT tx_hash, addr, asset_id, any(asset) AS asset, sum(delta) AS net
    FROM {db}.watched_legs_live
    WHERE {complete_days}
    GROUP BY tx_hash, addr, asset_id
);
