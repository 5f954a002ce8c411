-- Gate: coverage tiling of COMPLETE days (DESIGN §6.8, 100%).
-- For every COMPLETE day, every stream present in the day's current-claim ledger rows must
-- tile [start_block, end_block] exactly: sorted sub-ranges, the first starts at start_block,
-- each next starts at the previous end + 1 (no gap, no overlap), the last ends at end_block.
-- A COMPLETE day with no ledger row at all fails, and so does one missing a stream the run
-- expects ({expected_streams}, from the protocol profile; empty = not checked).
-- value = tiled COMPLETE days / COMPLETE days; n = COMPLETE days.
WITH
days AS (
    SELECT day_idx, start_block, end_block
    FROM {db}.backfill_checkpoint
    WHERE status = 'COMPLETE'
),
per_stream AS (
    SELECT l.day_idx AS day_idx, l.stream AS stream,
           any(d.start_block) AS s, any(d.end_block) AS e,
           arraySort(groupArray((l.from_block, l.to_block))) AS r
    FROM {db}.coverage_ledger AS l
    INNER JOIN days AS d ON l.day_idx = d.day_idx
    GROUP BY l.day_idx, l.stream
),
checked AS (
    SELECT day_idx, stream,
           arrayFirstIndex(i -> r[i + 1].1 != r[i].2 + 1, arrayEnumerate(arrayPopBack(r))) AS bad_i,
           multiIf(
               arrayExists(x -> x.1 > x.2, r), 'inverted sub-range',
               r[1].1 != s, concat('starts at ', toString(r[1].1), ', day starts at ', toString(s)),
               r[-1].2 != e, concat('ends at ', toString(r[-1].2), ', day ends at ', toString(e)),
               bad_i > 0, concat(if(r[bad_i + 1].1 > r[bad_i].2 + 1, 'gap ', 'overlap '),
                                 toString(r[bad_i].2), '..', toString(r[bad_i + 1].1)),
               '') AS why
    FROM per_stream
),
per_day AS (
    SELECT day_idx,
           arrayConcat(
               groupArrayIf(concat(stream, ' ', why), why != ''),
               arrayMap(x -> concat(x, ' missing'),
                        arrayFilter(x -> NOT has(groupArray(stream), x), {expected_streams}))
           ) AS problems
    FROM checked
    GROUP BY day_idx
),
verdict AS (
    SELECT d.day_idx AS day_idx,
           if(p.day_idx = d.day_idx, p.problems, ['no coverage rows']) AS problems
    FROM days AS d
    LEFT JOIN per_day AS p ON d.day_idx = p.day_idx
    SETTINGS join_use_nulls = 0
)
SELECT
    if(count() = 0, 1., countIf(empty(problems)) / count()) AS value,
    count() AS n,
    arrayStringConcat(
        arraySlice(
            arraySort(groupArrayIf(concat('day ', toString(day_idx), ': ',
                                          arrayStringConcat(problems, ', ')),
                                   notEmpty(problems))), 1, 5), '; ') AS detail
FROM verdict;
