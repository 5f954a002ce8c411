-- Transfer data. ReplacingMergeTree(created_at) on deterministic keys: a re-fetched range
-- re-inserts identical rows and merges collapse them, so a crash at worst costs a re-fetch.
-- non_replicated_deduplication_window lets a retried insert with the same dedup token be
-- dropped at once instead of waiting for a merge.
CREATE TABLE IF NOT EXISTS {db}.erc20_transfers (
    token         LowCardinality(String),
    from_address  String,
    to_address    String,
    value         UInt256,
    tx_hash       String,
    log_index     UInt32,
    block_number  UInt64,
    block_time    DateTime('UTC'),
    day_idx       UInt32,
    created_at    DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tx_hash, log_index)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.erc1155_transfers (
    contract      LowCardinality(String),
    operator      String,
    from_address  String,
    to_address    String,
    token_id      UInt256,
    value         UInt256,
    tx_hash       String,
    log_index     UInt32,
    batch_index   UInt32,
    block_number  UInt64,
    block_time    DateTime('UTC'),
    day_idx       UInt32,
    created_at    DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tx_hash, log_index, batch_index)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.condition_resolutions (
    contract            LowCardinality(String),
    condition_id        String,
    oracle              String,
    question_id         String,
    outcome_slot_count  UInt32,
    payout_numerators   Array(UInt256),
    tx_hash             String,
    log_index           UInt32,
    block_number        UInt64,
    block_time          DateTime('UTC'),
    day_idx             UInt32,
    created_at          DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tx_hash, log_index)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS {db}.token_registrations (
    contract      LowCardinality(String),
    token0        UInt256,
    token1        UInt256,
    condition_id  String,
    tx_hash       String,
    log_index     UInt32,
    block_number  UInt64,
    block_time    DateTime('UTC'),
    day_idx       UInt32,
    created_at    DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (tx_hash, log_index)
SETTINGS non_replicated_deduplication_window = 1000;
