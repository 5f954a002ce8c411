-- Step 4: the days of the run (checkpoint), for the coverage report.
SELECT c.day_idx AS day_idx, toString(c.day) AS day, c.start_block AS start_block,
       c.end_block AS end_block, toString(c.status) AS status, c.erc20_count AS erc20_count,
       c.erc1155_count AS erc1155_count, c.attempts AS attempts
FROM {db}.backfill_checkpoint AS c
ORDER BY day_idx;
