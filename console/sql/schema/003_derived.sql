-- Derived tables built by the on-complete rebuild (DESIGN §6.9) and their staging twins.
-- The rebuild fills `<name>_staging`, checks it, then swaps it with `<name>` by
-- EXCHANGE TABLES (atomic per pair on an Atomic database). Production tables are created
-- empty here so the very first EXCHANGE has something to swap with.
--
-- Amounts are integers in micro units (USDC and CTF shares both have 6 decimals), stored as
-- Int128: transfers are UInt256 on chain, but 2^127 micro-USDC is ~1.7e32 USDC, so a value
-- that would not fit is not a real flow (such a row would be classified LOW anyway).
-- Prices: `price` (Float64, usdc/shares, for display and the gates), `price_e6` (Int64,
-- floor(usdc * 1e6 / shares): micro-USDC per share, for people) and `price_e18` (Int128,
-- floor(usdc * 1e18 / shares): what the PnL folds, see console/sql/rebuild/03_positions.sql).

-- One row per (tx, wallet, token id) with the wallet's net token delta; the wallet's net
-- USDC delta for the whole tx repeats on each of its token rows. A (tx, wallet) with cash
-- but no token movement has one row with token_id = 0 (kind TRANSFER, LOW).
-- No sort key: sorting 20 M wide rows on insert cost more than the rest of step 1's write
-- (bench/rebuild.py); the table is read whole by step 3 and a wallet's flows are a scan away.
-- A token's condition and outcome are in `positions`.
CREATE TABLE IF NOT EXISTS {db}.net_flows (
    tx_hash        String,
    block_number   UInt64,
    log_index      UInt32,
    block_time     DateTime('UTC'),
    day_idx        UInt32,
    wallet         String,
    token_id       UInt256,
    token_delta    Int128,
    usdc_delta     Int128,
    n_tokens       UInt16,
    token_legs     UInt32,
    usdc_legs      UInt32,
    kind           LowCardinality(String),
    confidence     LowCardinality(String),
    clean          UInt8,
    price          Float64,
    price_e6       Int64,
    price_e18      Int128
) ENGINE = MergeTree
ORDER BY tuple();

CREATE TABLE IF NOT EXISTS {db}.net_flows_staging AS {db}.net_flows;

-- One row per (wallet, token id): the average-cost position after every flow and, when the
-- token's condition resolved while the position was open, its settlement at the payout.
CREATE TABLE IF NOT EXISTS {db}.positions (
    wallet            String,
    token_id          UInt256,
    condition_id      String,
    outcome_index     Int8,
    amount            Int128,
    avg_price         Float64,
    avg_price_e18     Int128,
    realized_pnl      Int128,
    realized_pnl_e18  Int128,
    total_bought      Int128,
    events            UInt32,
    high_events       UInt32,
    all_high          UInt8,
    resolved          UInt8,
    settled           UInt8,
    closed            UInt8,
    first_block       UInt64,
    last_block        UInt64
) ENGINE = MergeTree
ORDER BY (wallet, token_id);

CREATE TABLE IF NOT EXISTS {db}.positions_staging AS {db}.positions;

CREATE TABLE IF NOT EXISTS {db}.wallet_pnl (
    wallet            String,
    positions         UInt32,
    open_positions    UInt32,
    decided_positions UInt32,
    wins              UInt32,
    realized_pnl      Int128,
    total_bought      Int128,
    win_rate          Float64,
    first_block       UInt64,
    last_block        UInt64
) ENGINE = MergeTree
ORDER BY wallet;

CREATE TABLE IF NOT EXISTS {db}.wallet_pnl_staging AS {db}.wallet_pnl;

-- The token outcomes (view token_outcomes_live) as of the last rebuild: step 3 fills it once and
-- its position chunks join it (console/sql/rebuild/03_positions.sql). Scratch, not swapped.
CREATE TABLE IF NOT EXISTS {db}.rebuild_token_outcomes (
    token_id       UInt256,
    condition_id   String,
    outcome_index  Int8,
    resolved       UInt8,
    res_block      UInt64,
    res_log_index  UInt32,
    pay_num        Int128,
    pay_den        Int128,
    payout_e6      Int64,
    payout_e18     Int128
) ENGINE = MergeTree
ORDER BY token_id;
