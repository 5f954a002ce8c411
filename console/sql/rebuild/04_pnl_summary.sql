-- Step 3 summary (also the report's PnL section): read from the staging tables.
SELECT
    uniqExact(wallet)                                         AS wallets,
    count()                                                   AS positions,
    countIf(amount != 0 AND NOT resolved)                     AS open_positions,
    countIf(total_bought > 0 AND (resolved OR closed))        AS decided_positions,
    countIf(total_bought > 0 AND (resolved OR closed) AND realized_pnl > 0) AS wins,
    if(decided_positions = 0, 0., wins / decided_positions)   AS win_rate,
    toString(sum(realized_pnl))                               AS total_realized_e6,
    countIf(all_high)                                         AS all_high_positions,
    countIf(settled)                                          AS settled_positions
FROM {db}.positions_staging;
