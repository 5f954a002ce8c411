-- Gate: share of clean trades with a sane price 0 < p <= 1 (relaxed 0.80 / strict 0.95).
-- HIGH confidence itself requires a sane price, so the base here is the trades that are
-- HIGH by structure (`clean`: one USDC leg and one token id of opposite sign through known
-- contracts); otherwise planted prices > 1 would just drop out of the base unseen.
SELECT
    if(count() = 0, 1., countIf(price > 0 AND price <= 1) / count()) AS value,
    count() AS n,
    concat(toString(countIf(NOT (price > 0 AND price <= 1))), ' of ', toString(count()),
           ' clean trades priced outside (0, 1]; max price ', toString(round(max(price), 6))) AS detail
FROM {flows}
WHERE kind IN ('BUY', 'SELL') AND clean = 1 AND {complete_days};
