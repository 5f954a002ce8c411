-- Step 3a: average-cost positions per (wallet, token id), set-based: the flows of each
-- position are gathered in (block, log index) order and folded with arrayFold.
-- {chunk} is a wallet-hash chunk filter (console/engine/rebuild.py runs this INSERT once per
-- chunk): a position belongs to one wallet, so the chunks are exact, and the GROUP BY's
-- gathered arrays — the peak of the whole rebuild at 1048 days, ~1.8 GB in one go — hold one
-- chunk's flows at a time.
--
-- Events (typ): 0 buy  (BUY, SPLIT at 0.5)
--               1 sell (SELL, MERGE at 0.5, REDEEM at the payout)
--               2 settle: the condition resolved while the position was open -> sell the
--                 whole tracked amount at the payout (a later redemption finds amount 0)
--               3 transfer (a gift, no cash): a flow of the position (so it is not
--                 "all HIGH") that moves neither amount nor cost basis — as the devchain's
--                 bookkeeping and Polymarket's PnL subgraph do; a later sell larger than the
--                 tracked amount realizes only the tracked amount.
--
-- Rounding rule. Quantities are integer micro-shares, cash integer micro-USDC. Prices and
-- the average cost are fixed point with 18 decimals (Int128, USDC per share x 1e18):
--   price_e18 = floor(|usdc| * 1e18 / shares)                        (net_flows)
--   buy  q at p: avg = floor((avg * amount + p * q) / (amount + q));  amount += q
--   sell q at p: s = min(q, amount); realized_e18 += s * (p - avg);    amount -= s
--   realized_pnl (micro-USDC) = realized_e18 / 1e18 rounded half to even, once, at the end.
-- The sells are exact; the only rounding before the end is the average's last 1e-18 USDC
-- per share, so the result equals exact rational bookkeeping (the devchain's Fraction
-- arithmetic, rounded with Python's round()) unless the exact value lies within ~1e-6
-- micro-USDC of a half — for realistic sizes (< 1e7 shares, < 1e4 buys per position).
-- Int128 bounds: avg * amount < 1e18 * 1e19 micro-shares; far above any real position.

-- The token outcomes (the view token_outcomes_live, console/sql/rebuild/00_views.sql), computed
-- once per rebuild into a small table the position chunks join: evaluating the view inside a
-- chunk — twice, for the settle events and for the output — aggregated every registration and
-- resolution again each time, ~70 MB of every chunk's fixed cost (1048 days: +145 -> +74 MB for
-- 1/192 of the wallets, +336 -> +293 MB for 1/12) for a table of 84 K rows. The table is
-- created with the schema (console/sql/schema/003_derived.sql).
TRUNCATE TABLE {db}.rebuild_token_outcomes;

INSERT INTO {db}.rebuild_token_outcomes
    (token_id, condition_id, outcome_index, resolved, res_block, res_log_index, pay_num, pay_den,
     payout_e6, payout_e18)
SELECT token_id, condition_id, outcome_index, resolved, res_block, res_log_index, pay_num, pay_den,
       payout_e6, payout_e18
FROM {db}.token_outcomes_live;

TRUNCATE TABLE IF EXISTS {db}.positions_staging;

INSERT INTO {db}.positions_staging
    (wallet, token_id, condition_id, outcome_index, amount, avg_price, avg_price_e18,
     realized_pnl, realized_pnl_e18, total_bought, events, high_events, all_high, resolved,
     settled, closed, first_block, last_block)
SELECT wallet, token_id, condition_id, outcome_index, amount, avg_price, avg_price_e18,
       realized_pnl, realized_pnl_e18, total_bought, events, high_events, all_high, resolved,
       settled, closed, first_block, last_block
FROM (
SELECT
    a.wallet AS wallet, a.token_id AS token_id,
    o.condition_id AS condition_id, if(o.condition_id = '', toInt8(-1), o.outcome_index) AS outcome_index,
    st.1 AS amount,
    st.2 / 1e18 AS avg_price,
    st.2 AS avg_price_e18,
    -- st.3 / 1e18 rounded half to even: floor division, then the remainder decides
    intDiv(st.3, E18) - (st.3 % E18 < 0) AS fl,
    st.3 % E18 + if(st.3 % E18 < 0, E18, toInt128(0)) AS rem,
    fl + multiIf(rem * 2 > E18, 1, rem * 2 = E18 AND fl % 2 != 0, 1, 0) AS realized_pnl,
    st.3 AS realized_pnl_e18,
    st.4 AS total_bought,
    events, high_events,
    toUInt8(events = high_events) AS all_high,
    resolved,
    st.5 AS settled,
    toUInt8(st.1 = 0 AND st.4 > 0) AS closed,
    first_block, last_block
FROM (
    SELECT
        wallet, token_id,
        toInt128('1000000000000000000') AS E18,
        toUInt8(max(typ = 2)) AS resolved,
        toUInt32(countIf(typ != 2)) AS events,
        toUInt32(countIf(typ != 2 AND confidence = 'HIGH')) AS high_events,
        minIf(block_number, typ != 2) AS first_block,
        maxIf(block_number, typ != 2) AS last_block,
        arrayFold(
            (s, e) -> multiIf(
                e.3 = 3, s,
                e.3 = 0,
                (s.1 + e.4,
                 if(s.1 + e.4 = 0, s.2, intDivOrZero(s.2 * s.1 + e.5 * e.4, s.1 + e.4)),
                 s.3,
                 s.4 + e.4,
                 s.5),
                (s.1 - least(if(e.3 = 2, s.1, e.4), s.1),
                 s.2,
                 s.3 + least(if(e.3 = 2, s.1, e.4), s.1) * (e.5 - s.2),
                 s.4,
                 if(e.3 = 2 AND s.1 > 0, toUInt8(1), s.5))),
            arraySort(x -> (x.1, x.2, x.3),
                      groupArray((block_number, log_index, typ, q, p))),
            (toInt128(0), toInt128(0), toInt128(0), toInt128(0), toUInt8(0))
        ) AS st
    FROM (
        SELECT wallet, token_id, block_number, log_index,
               toUInt8(multiIf(kind IN ('BUY', 'SPLIT'), 0, kind = 'TRANSFER', 3, 1)) AS typ,
               toInt128(abs(token_delta)) AS q,
               price_e18 AS p,
               confidence
        FROM {db}.net_flows_staging
        WHERE token_id != 0 AND {chunk}
        UNION ALL
        SELECT f.wallet, f.token_id, o.res_block, o.res_log_index,
               toUInt8(2), toInt128(0), o.payout_e18, 'SETTLE'
        FROM (SELECT DISTINCT wallet, token_id FROM {db}.net_flows_staging
              WHERE token_id != 0 AND kind IN ('BUY', 'SELL', 'SPLIT', 'MERGE', 'REDEEM')
                    AND {chunk}) AS f
        INNER JOIN {db}.rebuild_token_outcomes AS o ON f.token_id = o.token_id
        WHERE o.resolved
    )
    GROUP BY wallet, token_id
) AS a
LEFT JOIN {db}.rebuild_token_outcomes AS o ON a.token_id = o.token_id
)
-- Memory (issue 8): one thread, small insert blocks (see 01_net_flows.sql), and 8 K-row
-- blocks: arrayFold evaluates over a whole block's arrays at once; at the default 65 K rows
-- this INSERT peaked ~0.5 GB higher on 20 M transfer rows (bench/rebuild.py).
SETTINGS max_threads = 1, max_block_size = 8192, max_insert_threads = 1,
         min_insert_block_size_rows = 65536, min_insert_block_size_bytes = 16777216;

-- Step 3b: per wallet. A position is "decided" when it was bought (or split into) and then
-- closed (amount back to 0) or its condition resolved; a win is a decided position with
-- realized PnL > 0. Positions only ever received as gifts are not decided.
TRUNCATE TABLE IF EXISTS {db}.wallet_pnl_staging;

INSERT INTO {db}.wallet_pnl_staging
SELECT
    wallet,
    toUInt32(count()) AS positions,
    toUInt32(countIf(amt != 0 AND NOT res)) AS open_positions,
    toUInt32(countIf(decided)) AS decided_positions,
    toUInt32(countIf(decided AND pnl > 0)) AS wins,
    sum(pnl) AS realized_pnl,
    sum(bought) AS total_bought,
    if(decided_positions = 0, 0., wins / decided_positions) AS win_rate,
    min(fb) AS first_block,
    max(lb) AS last_block
FROM (
    SELECT wallet, amount AS amt, resolved AS res, realized_pnl AS pnl, total_bought AS bought,
           first_block AS fb, last_block AS lb,
           total_bought > 0 AND (resolved OR closed) AS decided
    FROM {db}.positions_staging
)
GROUP BY wallet;
