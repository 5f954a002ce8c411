"""The schema on embedded chDB and the runbook's monitoring SQL, verbatim."""

import datetime as dt
import subprocess
import sys

import pytest

from console.engine.store import Store
from tests.rebuild.builder import hold_merges

RUNBOOK_DAYS_DONE = "SELECT countIf(status='COMPLETE') as days_done, max(day_idx) as max_day\nFROM backfill_checkpoint;"
RUNBOOK_WORKER_HEALTH = "SELECT worker_id, last_batch, dateDiff('minute', updated_at, now()) as mins_ago\nFROM worker_heartbeats ORDER BY worker_id;"
RUNBOOK_VOLUME = "SELECT SUM(erc20_count), SUM(erc1155_count) FROM backfill_checkpoint;"


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(f"chdb://{tmp_path / 'ch'}", "backfill")
    yield s
    await s.close()


def _checkpoint(day_idx, status, e20, e1155, at):
    return {"day_idx": day_idx, "day": dt.date(2024, 1, 1) + dt.timedelta(days=day_idx),
            "start_block": 100 * day_idx, "end_block": 100 * day_idx + 99, "status": status,
            "worker_id": day_idx % 2, "epoch": 1, "claim_id": 7, "erc20_count": e20,
            "erc1155_count": e1155, "attempts": 1, "last_error": "", "updated_at": at}


async def test_schema_applies_twice(store):
    await store.apply_schema()
    await store.apply_schema()
    versions = await store.query("SELECT count() FROM {db}.schema_version FINAL")
    assert versions == [(1,)]


async def test_runbook_queries_see_latest_version_only(store):
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    rows = [
        _checkpoint(0, "CLAIMED", 0, 0, t0),
        _checkpoint(0, "COMPLETE", 10, 20, t0 + dt.timedelta(seconds=5)),
        _checkpoint(1, "CLAIMED", 0, 0, t0),
        _checkpoint(1, "COMPLETE", 3, 4, t0 + dt.timedelta(seconds=5)),
        _checkpoint(1, "COMPLETE", 3, 4, t0 + dt.timedelta(seconds=9)),  # a re-run of day 1
        _checkpoint(2, "CLAIMED", 0, 0, t0 + dt.timedelta(seconds=1)),
    ]
    # Insert one at a time so the versions land in separate parts (no merge has happened).
    for r in rows:
        await store.insert_rows("backfill_checkpoint_versions", [r])
    hb = [{"worker_id": 1, "last_batch": "day 1", "status": "running", "epoch": 1, "updated_at": t0},
          {"worker_id": 1, "last_batch": "day 3", "status": "running", "epoch": 1,
           "updated_at": dt.datetime.now(dt.timezone.utc)},
          {"worker_id": 0, "last_batch": "day 2", "status": "running", "epoch": 1,
           "updated_at": dt.datetime.now(dt.timezone.utc)}]
    for r in hb:
        await store.insert_rows("worker_heartbeats_versions", [r])

    await store.command("USE {db}")
    assert await store.query(RUNBOOK_DAYS_DONE) == [(2, 2)]
    assert await store.query(RUNBOOK_VOLUME) == [(13, 24)]
    health = await store.query(RUNBOOK_WORKER_HEALTH)
    assert [(w, b) for w, b, _ in health] == [(0, "day 2"), (1, "day 3")]
    assert all(m <= 1 for _, _, m in health)


async def test_coverage_view_shows_only_current_claim(store):
    t0 = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    cp = _checkpoint(0, "COMPLETE", 1, 1, t0)
    cp["claim_id"] = 2
    await store.insert_rows("backfill_checkpoint_versions", [cp])
    stale = {"day_idx": 0, "stream": "ctf_transfers", "from_block": 0, "to_block": 60,
             "log_count": 1, "claim_id": 1, "fetched_at": t0}
    fresh = [{"day_idx": 0, "stream": "ctf_transfers", "from_block": a, "to_block": b,
              "log_count": 1, "claim_id": 2, "fetched_at": t0} for a, b in ((0, 49), (50, 99))]
    await store.insert_rows("coverage_ledger_versions", [stale] + fresh)
    got = await store.query("SELECT from_block, to_block FROM {db}.coverage_ledger ORDER BY from_block")
    assert got == [(0, 49), (50, 99)]


async def test_uint256_round_trip(store):
    big = 2**256 - 1
    await store.insert_columns("erc20_transfers", {
        "token": ["0xa"], "from_address": ["0xb"], "to_address": ["0xc"], "value": [big],
        "tx_hash": ["0x1"], "log_index": [0], "block_number": [1],
        "block_time": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "day_idx": [0]})
    assert await store.query("SELECT value FROM {db}.erc20_transfers") == [(big,)]


def test_inserts_do_not_import_pandas(tmp_path):
    """clickhouse-connect's insert path would import pandas (~0.5 s) to ask whether our lists are
    a DataFrame; the store answers that probe instead. Fresh interpreter: other tests may load it."""
    code = (
        "import asyncio, sys\n"
        "from console.engine.store import Store\n"
        "async def go():\n"
        f"    s = await Store.open('chdb://{tmp_path / 'ch'}')\n"
        "    await s.insert_rows('schema_version', [{'version': 9}])\n"
        "    print((await s.query('SELECT max(version) FROM {db}.schema_version'))[0][0])\n"
        "    await s.close()\n"
        "asyncio.run(go())\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["9", "False"]


async def test_inserted_rows_are_not_kept_alive_by_the_client(store):
    """clickhouse-connect keeps an insert's data in a reference cycle (its InsertContext): the
    store hands it copies of the columns and empties them, so the rows are free without a GC
    pass, and the caller's lists are left as they were."""
    import gc

    marker = int("7000123")  # a fresh int object: its reference count is ours to watch
    column = [marker, 7000124]
    before = sys.getrefcount(marker)
    gc.disable()
    try:
        await store.insert_columns("schema_version", {"version": column})
        assert sys.getrefcount(marker) == before
    finally:
        gc.enable()
    assert column == [marker, 7000124]
    got = await store.query("SELECT count() FROM {db}.schema_version WHERE version >= 7000123")
    assert got[0][0] == 2


def _transfer(tx: str, value: int) -> dict:
    return {"token": ["0xa"], "from_address": ["0xb"], "to_address": ["0xc"], "value": [value],
            "tx_hash": [tx], "log_index": [0], "block_number": [1],
            "block_time": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)], "day_idx": [0]}


async def test_compact_merges_each_table_into_one_part_and_keeps_the_final_rows(store):
    await hold_merges(store, ["erc20_transfers"])
    for tx, value in (("0x1", 5), ("0x2", 6), ("0x1", 7)):  # the last one: a newer version of 0x1
        await store.insert_columns("erc20_transfers", _transfer(tx, value))
    final = "SELECT tx_hash, value FROM {db}.erc20_transfers FINAL ORDER BY tx_hash"
    before = await store.query(final)

    parts = await store.compact(("erc20_transfers", "erc1155_transfers"))

    assert parts == {"erc20_transfers": (3, 1), "erc1155_transfers": (0, 0)}
    assert await store.query(final) == before == [("0x1", 7), ("0x2", 6)]
    assert await store.query("SELECT count() FROM {db}.erc20_transfers") == [(2,)]  # merged, not hidden
    assert await store.compact(("erc20_transfers",)) == {"erc20_transfers": (1, 1)}


async def test_compact_leaves_a_server_store_alone():
    server = Store("http://default:secret@127.0.0.1:1/", "backfill")  # never connected
    assert await server.compact(("erc20_transfers",)) == {}
    await server.close()
