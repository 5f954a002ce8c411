-- Gate: share of trade-like net flows (BUY / SELL rows) with HIGH confidence
-- (relaxed 0.60 / strict 0.80). {flows} is the live view or the rebuild's staging table
-- (the same SQL, console/sql/rebuild/00_views.sql); {complete_days} limits relaxed runs to
-- COMPLETE days so a day still being fetched (USDC stream in, CTF stream not yet) does not
-- count as unclassifiable flows.
SELECT
    if(count() = 0, 1., countIf(confidence = 'HIGH') / count()) AS value,
    count() AS n,
    concat('HIGH ', toString(countIf(confidence = 'HIGH')),
           ', MEDIUM ', toString(countIf(confidence = 'MEDIUM')),
           ', LOW ', toString(countIf(confidence = 'LOW')),
           ' of ', toString(count()), ' BUY/SELL flows') AS detail
FROM {flows}
WHERE kind IN ('BUY', 'SELL') AND {complete_days};
