-- Shared by rebuild step 1 and the net-flow gates (console/engine/gates.py renders the
-- placeholders {collateral} {ctf} {infra} {zero} from the protocol profile as literal
-- address arrays, then creates these views; the gates read `net_flows_live` during the
-- backfill, step 1 copies it into `net_flows_staging`). One SQL, no twins.

-- token id -> (condition, outcome index, resolution). The exchanges register a pair twice,
-- (token, complement) then (complement, token) in the same tx (Polymarket's registerToken;
-- the devchain does the same): the condition's FIRST TokenRegistered event (lowest block,
-- log index) gives outcome index 0 to its token0 and 1 to its token1 (the CTF's index sets
-- 1 and 2). A condition's first ConditionResolution counts.
-- payout_e6 = floor(numerator * 1e6 / sum(numerators)), payout_e18 likewise with 1e18.
CREATE OR REPLACE VIEW {db}.token_outcomes_live AS
SELECT
    reg.token                                   AS token_id,
    reg.condition_id                            AS condition_id,
    reg.outcome_index                           AS outcome_index,
    res.condition_id != ''                      AS resolved,
    res.res_block                               AS res_block,
    res.res_log_index                           AS res_log_index,
    if(res.condition_id != '', toInt128(res.nums[reg.outcome_index + 1]), toInt128(0)) AS pay_num,
    if(res.condition_id != '', toInt128(arraySum(res.nums)), toInt128(0))               AS pay_den,
    if(pay_den > 0, toInt64(intDivOrZero(pay_num * 1000000, pay_den)), toInt64(-1))            AS payout_e6,
    if(pay_den > 0, intDivOrZero(pay_num * toInt128('1000000000000000000'), pay_den), toInt128(-1)) AS payout_e18
FROM (
    SELECT t.1 AS token, any(condition_id) AS condition_id, any(t.2) AS outcome_index
    FROM (
        SELECT condition_id, argMin((token0, token1), (block_number, log_index)) AS pair
        FROM {db}.token_registrations FINAL
        GROUP BY condition_id
    )
    ARRAY JOIN [(pair.1, toInt8(0)), (pair.2, toInt8(1))] AS t
    GROUP BY token
) AS reg
LEFT JOIN (
    SELECT condition_id,
           argMin(payout_numerators, (block_number, log_index)) AS nums,
           min(block_number)                                    AS res_block,
           argMin(log_index, (block_number, log_index))         AS res_log_index
    FROM {db}.condition_resolutions FINAL
    GROUP BY condition_id
    HAVING arraySum(nums) > 0
) AS res ON reg.condition_id = res.condition_id;

-- Net flows per (tx, wallet, token id), classified. Infrastructure addresses (CTF,
-- exchanges, adapters, 0x0, extras) are never a wallet; a leg whose counterparty is not
-- infrastructure is an "unknown counterparty" leg. token_id 0 marks the USDC leg inside the
-- query and, in the output, a (tx, wallet) that moved cash but no token.
--
-- kind:  REDEEM  every token burned to 0x0, condition resolved before the tx, cash >= 0
--        SPLIT   two ids minted from 0x0, cash out
--        MERGE   two ids burned to 0x0, cash in
--        TRANSFER no cash leg (gifts), or cash without any token (deposits, bridge)
--        BUY / SELL otherwise, by the sign of the token delta
-- clean: the structure of a clean trade — one USDC leg and one token leg, one token id,
--        opposite signs, every counterparty a known contract, no mint/burn.
-- confidence:
--   BUY/SELL  HIGH clean and 0 < p <= 1; MEDIUM opposite signs and 0 < p <= 1.05 (several
--             fills or ids, unknown counterparty, p slightly out); LOW otherwise.
--   SPLIT/MERGE HIGH when the two ids are the two outcomes of one registered condition, in
--             equal amounts, and the cash equals the amount; MEDIUM otherwise.
--   REDEEM    HIGH when the cash equals sum(floor(q * numerator / denominator)) over the
--             burned ids with known counterparties; MEDIUM otherwise; LOW if unresolved.
--   TRANSFER  LOW.
-- price_e6 / price_e18 (USDC per share x 1e6 / x 1e18; the PnL folds price_e18):
-- BUY/SELL floor(|cash| * 10^k / shares); SPLIT/MERGE 0.5; REDEEM the outcome's payout
-- (0 for a losing outcome).
CREATE OR REPLACE VIEW {db}.net_flows_live AS
WITH
-- every transfer seen from the wallet side (both ends, infrastructure ends dropped); token
-- legs carry what the CTF knows about their token. One pass over each table, one GROUP BY.
legs AS (
    SELECT tx_hash, block_number, log_index, block_time, day_idx,
           side.1 AS wallet, toUInt256(0) AS token_id, side.3 AS delta,
           side.2 NOT IN {infra} AS unknown, side.2 = {zero} AS zero,
           (toUInt64(0), toInt8(-1), false, toInt128(0), toInt128(0), toInt128(-1)) AS info
    FROM {db}.erc20_transfers FINAL
    ARRAY JOIN [(from_address, to_address, -toInt128(value)),
                (to_address, from_address, toInt128(value))] AS side
    WHERE token IN {collateral} AND side.1 NOT IN {infra}
    UNION ALL
    SELECT t.tx_hash, t.block_number, t.log_index, t.block_time, t.day_idx,
           t.wallet, t.token_id, t.delta, t.unknown, t.zero,
           -- mint/burn legs only (what splits, merges and redemptions are told apart by):
           -- (condition hash, outcome_index, resolved before this tx, pay_num, pay_den,
           --  payout_e18). Trade legs carry a blank: measured, carrying it on every leg
           -- costs a third of the step.
           if(t.zero AND o.condition_id != '',
              (cityHash64(o.condition_id), o.outcome_index,
               o.resolved AND (o.res_block, o.res_log_index) < (t.block_number, t.log_index),
               o.pay_num, o.pay_den, o.payout_e18),
              (toUInt64(0), toInt8(-1), false, toInt128(0), toInt128(0), toInt128(-1)))
    FROM (
        SELECT tx_hash, block_number, log_index, block_time, day_idx, token_id,
               side.1 AS wallet, side.3 AS delta,
               side.2 NOT IN {infra} AS unknown, side.2 = {zero} AS zero
        FROM {db}.erc1155_transfers FINAL
        ARRAY JOIN [(from_address, to_address, -toInt128(value)),
                    (to_address, from_address, toInt128(value))] AS side
        WHERE contract IN {ctf} AND side.1 NOT IN {infra}
    ) AS t
    LEFT JOIN {db}.token_outcomes_live AS o ON t.token_id = o.token_id
),
per_wallet AS (
    SELECT tx_hash, wallet,
           min(block_number) AS block_number, min(log_index) AS log_index,
           min(block_time) AS block_time, min(day_idx) AS day_idx,
           sumIf(delta, token_id = 0) AS usdc_delta,
           toUInt32(countIf(token_id = 0)) AS usdc_legs,
           countIf(token_id = 0 AND unknown) AS usdc_unknown,
           groupArrayIf((token_id, delta, unknown, zero), token_id != 0) AS tlegs,
           -- what the CTF knows, for the mint/burn legs only (kept apart: the trade legs
           -- are 90 %+ of the rows and do not need it)
           groupArrayIf((token_id, info), zero) AS zinfo
    FROM legs
    GROUP BY tx_hash, wallet
),
-- `toks` has its own CTE: every alias below that reads it (n, token_legs, all_burn, pattern,
-- ...) would otherwise re-analyse its whole lambda expression, and ClickHouse's analysis of
-- this view was ~0.3 s per statement that reads it — the fixed cost of every net-flow chunk
-- of the closing gates and rebuild step 1 (86 chunks each at 1048 days). Here: ~0.15 s.
with_toks AS (
    SELECT *,
        -- per token id: (token_id, delta, legs, unknown legs, mint/burn legs, info); the
        -- common single-leg case skips the per-id regrouping
        arrayFilter(x -> x.2 != 0, if(length(tlegs) <= 1 AND empty(zinfo),
            arrayMap(l -> (l.1, l.2, toUInt64(1), toUInt64(l.3), toUInt64(0),
                           (toUInt64(0), toInt8(-1), false, toInt128(0), toInt128(0), toInt128(-1))), tlegs),
            arrayMap(id -> (
                id,
                arraySum(arrayMap(l -> if(l.1 = id, l.2, toInt128(0)), tlegs)),
                toUInt64(arrayCount(l -> l.1 = id, tlegs)),
                toUInt64(arrayCount(l -> l.1 = id AND l.3, tlegs)),
                toUInt64(arrayCount(l -> l.1 = id AND l.4, tlegs)),
                if(has(arrayMap(z -> z.1, zinfo), id), arrayFirst(z -> z.1 = id, zinfo).2,
                   (toUInt64(0), toInt8(-1), false, toInt128(0), toInt128(0), toInt128(-1)))),
                arrayDistinct(arrayMap(l -> l.1, tlegs))))) AS toks
    FROM per_wallet
),
shaped AS (
    SELECT *,
        length(toks) AS n,
        toUInt32(arraySum(x -> x.3, toks)) AS token_legs,
        arraySum(x -> x.4, toks) AS token_unknown,
        arraySum(x -> abs(x.2), toks) AS q_total,
        arrayAll(x -> x.2 > 0 AND x.5 = x.3, toks) AS all_mint,
        arrayAll(x -> x.2 < 0 AND x.5 = x.3, toks) AS all_burn,
        arrayAll(x -> x.6.3, toks) AS all_resolved_before,
        n = 2 AND toks[1].6.1 != 0 AND toks[1].6.1 = toks[2].6.1 AND toks[1].6.2 != toks[2].6.2
            AND toks[1].2 = toks[2].2 AND usdc_delta = -toks[1].2
            AND usdc_legs = 1 AND usdc_unknown = 0 AND token_unknown = 0 AS clean_pair,
        arraySum(x -> if(x.6.5 > 0, intDivOrZero(abs(x.2) * x.6.4, x.6.5), toInt128(0)), toks) AS redeem_cash,
        multiIf(
            n = 0, 'TRANSFER',
            all_burn AND all_resolved_before AND usdc_delta >= 0, 'REDEEM',
            n = 2 AND all_mint AND usdc_delta < 0, 'SPLIT',
            n = 2 AND all_burn AND usdc_delta > 0, 'MERGE',
            all_burn AND usdc_delta >= 0, 'REDEEM',
            usdc_delta = 0, 'TRANSFER',
            '') AS pattern
    FROM with_toks
    WHERE usdc_delta != 0 OR notEmpty(toks)
)
SELECT
    tx_hash, block_number, log_index, block_time, day_idx, wallet,
    t.1 AS token_id,
    t.2 AS token_delta,
    usdc_delta,
    toUInt16(n) AS n_tokens,
    token_legs,
    usdc_legs,
    if(pattern = '', if(t.2 > 0, 'BUY', 'SELL'), pattern) AS kind,
    toUInt8(pattern = '' AND n = 1 AND usdc_legs = 1 AND token_legs = 1 AND usdc_unknown = 0
            AND token_unknown = 0 AND t.5 = 0 AND usdc_delta * t.2 < 0) AS clean,
    multiIf(
        kind IN ('SPLIT', 'MERGE'), 0.5,
        kind = 'REDEEM' AND t.6.3, t.6.6 / 1e18,
        q_total > 0, abs(toFloat64(usdc_delta)) / toFloat64(q_total),
        0.) AS price,
    multiIf(
        kind IN ('SPLIT', 'MERGE'), toInt64(500000),
        kind = 'REDEEM' AND t.6.3, toInt64(intDiv(t.6.6, 1000000000000)),
        q_total > 0, toInt64(intDivOrZero(abs(usdc_delta) * 1000000, q_total)),
        toInt64(0)) AS price_e6,
    multiIf(
        kind IN ('SPLIT', 'MERGE'), toInt128('500000000000000000'),
        kind = 'REDEEM' AND t.6.3, t.6.6,
        q_total > 0, intDivOrZero(abs(usdc_delta) * toInt128('1000000000000000000'), q_total),
        toInt128(0)) AS price_e18,
    multiIf(
        kind IN ('BUY', 'SELL') AND clean AND price > 0 AND price <= 1, 'HIGH',
        kind IN ('BUY', 'SELL') AND usdc_delta * t.2 < 0 AND price > 0 AND price <= 1.05, 'MEDIUM',
        kind IN ('BUY', 'SELL'), 'LOW',
        kind IN ('SPLIT', 'MERGE'), if(clean_pair, 'HIGH', 'MEDIUM'),
        kind = 'REDEEM' AND NOT all_resolved_before, 'LOW',
        kind = 'REDEEM', if(usdc_delta = redeem_cash AND usdc_unknown = 0 AND token_unknown = 0
                            AND usdc_legs <= 1, 'HIGH', 'MEDIUM'),
        'LOW') AS confidence
FROM shaped
LEFT ARRAY JOIN toks AS t;

-- Every transfer leg of an exchange or adapter ({watched}), signed from its side, for the
-- infra_balance gate. asset_id: the token id, or a hash of the collateral address (a numeric
-- group key: a 78-digit string key doubled the gate's cost); asset: the collateral address.
CREATE OR REPLACE VIEW {db}.watched_legs_live AS
SELECT tx_hash, day_idx, side.1 AS addr, toString(token) AS asset,
       toUInt256(cityHash64(token)) AS asset_id, side.2 AS delta
FROM {db}.erc20_transfers FINAL
ARRAY JOIN [(from_address, -toInt256(value)), (to_address, toInt256(value))] AS side
WHERE token IN {collateral} AND side.1 IN {watched}
UNION ALL
SELECT tx_hash, day_idx, side.1 AS addr, '' AS asset, token_id AS asset_id, side.2 AS delta
FROM {db}.erc1155_transfers FINAL
ARRAY JOIN [(from_address, -toInt256(value)), (to_address, toInt256(value))] AS side
WHERE contract IN {ctf} AND side.1 IN {watched};
