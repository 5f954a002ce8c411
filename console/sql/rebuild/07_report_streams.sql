-- Step 4: per stream, from the current-claim coverage ledger.
SELECT toString(stream) AS stream, uniqExact(day_idx) AS days, count() AS subranges,
       sum(log_count) AS logs, sum(to_block - from_block + 1) AS blocks,
       min(from_block) AS first_block, max(to_block) AS last_block
FROM {db}.coverage_ledger
GROUP BY stream
ORDER BY stream;
