-- Run state. Each table is written as versions into `<name>_versions`
-- (ReplacingMergeTree on updated_at) and read through a view `<name>` that applies FINAL, so
-- the runbook's monitoring SQL runs verbatim and sees exactly one row per key even before
-- ClickHouse has merged the versions.
CREATE TABLE IF NOT EXISTS {db}.backfill_checkpoint_versions (
    day_idx        UInt32,
    day            Date,
    start_block    UInt64,
    end_block      UInt64,
    status         LowCardinality(String),
    worker_id      UInt16,
    epoch          UInt32,
    claim_id       UInt64,
    erc20_count    UInt64,
    erc1155_count  UInt64,
    attempts       UInt32,
    last_error     String,
    updated_at     DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY day_idx;

CREATE VIEW IF NOT EXISTS {db}.backfill_checkpoint AS
SELECT * FROM {db}.backfill_checkpoint_versions FINAL;

CREATE TABLE IF NOT EXISTS {db}.day_blocks_versions (
    day_idx      UInt32,
    day          Date,
    start_block  UInt64,
    end_block    UInt64,
    updated_at   DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY day_idx;

CREATE VIEW IF NOT EXISTS {db}.day_blocks AS
SELECT * FROM {db}.day_blocks_versions FINAL;

CREATE TABLE IF NOT EXISTS {db}.worker_heartbeats_versions (
    worker_id   UInt16,
    last_batch  String,
    status      LowCardinality(String),
    epoch       UInt32,
    updated_at  DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY worker_id;

CREATE VIEW IF NOT EXISTS {db}.worker_heartbeats AS
SELECT * FROM {db}.worker_heartbeats_versions FINAL;

-- Every fetched sub-range, tagged with the claim that fetched it. A day re-claimed after a
-- crash is fetched again under a new claim_id (perhaps split differently); the view shows
-- only the sub-ranges of the day's current claim, so they tile [start_block, end_block]
-- without the stale attempt's overlaps.
CREATE TABLE IF NOT EXISTS {db}.coverage_ledger_versions (
    day_idx     UInt32,
    stream      LowCardinality(String),
    from_block  UInt64,
    to_block    UInt64,
    log_count   UInt64,
    claim_id    UInt64,
    fetched_at  DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree(fetched_at)
ORDER BY (day_idx, claim_id, stream, from_block);

CREATE VIEW IF NOT EXISTS {db}.coverage_ledger AS
SELECT l.day_idx AS day_idx, l.stream AS stream, l.from_block AS from_block,
       l.to_block AS to_block, l.log_count AS log_count, l.fetched_at AS fetched_at,
       l.claim_id AS claim_id
FROM {db}.coverage_ledger_versions AS l FINAL
INNER JOIN (SELECT day_idx, claim_id FROM {db}.backfill_checkpoint_versions FINAL) AS c
    ON l.day_idx = c.day_idx AND l.claim_id = c.claim_id;

CREATE TABLE IF NOT EXISTS {db}.gate_results (
    run_id     String,
    name       LowCardinality(String),
    mode       LowCardinality(String),
    value      Float64,
    threshold  Float64,
    comparator LowCardinality(String),
    passed     Bool,
    detail     String,
    at         DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (at, name);

CREATE TABLE IF NOT EXISTS {db}.rebuild_steps (
    run_id      String,
    step        UInt8,
    name        LowCardinality(String),
    state       LowCardinality(String),
    started_at  DateTime64(3, 'UTC'),
    finished_at Nullable(DateTime64(3, 'UTC')),
    seconds     Float64,
    detail      String
) ENGINE = MergeTree
ORDER BY (started_at, step);
