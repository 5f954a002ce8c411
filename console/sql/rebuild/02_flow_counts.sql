-- Step 1 summary: rows per (kind, confidence) in the staging net flows.
SELECT kind, confidence, count() AS n
FROM {db}.net_flows_staging
GROUP BY kind, confidence
ORDER BY kind, confidence;
