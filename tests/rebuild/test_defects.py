"""Planted defects: the matching gate fails, the rebuild STOPs with exit code 1, nothing is
swapped (production tables hold exactly what the previous good rebuild put there) and
on-complete.log names the gate."""

import datetime as dt

import pytest

from console.devchain.world import build_world
from console.engine.rebuild import SUCCESS_LINE, rebuild
from console.settings import GateThresholds

from .builder import EXCHANGE, PROFILE, STREAMS, USDC, Chain, addr, load_world

FINGERPRINT = """
SELECT (SELECT (count(), groupBitXor(cityHash64(tx_hash, wallet, token_id, kind))) FROM {db}.net_flows),
       (SELECT (count(), sum(realized_pnl), groupBitXor(cityHash64(wallet, token_id, realized_pnl))) FROM {db}.positions),
       (SELECT (count(), sum(realized_pnl)) FROM {db}.wallet_pnl)
"""


@pytest.fixture(scope="module")
def world():
    return build_world("small", seed=1)


async def baseline(store, data_dir, world):
    await load_world(store, world)
    good = await rebuild(store, PROFILE, GateThresholds(), data_dir, run_stats={}, run_id="good")
    assert good.ok, good.reason
    before = await store.query(FINGERPRINT)
    assert before[0][1][0] > 0
    return before


async def stop_on(store, data_dir, before, gate: str):
    log_path = data_dir / "backfill" / "on-complete.log"
    out = await rebuild(store, PROFILE, GateThresholds(), data_dir, run_stats={}, run_id="bad")
    assert not out.ok
    assert out.exit_code == 1
    assert gate in out.reason, out.reason
    assert out.report_path is None
    assert [s.state for s in out.steps if s.state != "running"][-3:] in (
        ["failed", "skipped", "skipped"], ["done", "failed", "skipped"])
    assert await store.query(FINGERPRINT) == before  # production untouched
    lines = log_path.read_text().splitlines()
    assert lines[-1] != SUCCESS_LINE
    tail = "\n".join(lines[-12:])
    assert f"gate {gate}" in tail and "❌" in tail and "STOP" in tail
    rows = await store.query(
        "SELECT passed FROM {db}.gate_results WHERE run_id = 'bad' AND name = %(g)s", {"g": gate})
    assert rows == [(False,)]
    return out


async def test_duplicate_key_with_other_content(store, data_dir, world):
    before = await baseline(store, data_dir, world)
    row = (await store.query_dicts(
        "SELECT * EXCEPT created_at FROM {db}.erc20_transfers ORDER BY tx_hash LIMIT 1"))[0]
    row["value"] = row["value"] + 1
    await store.insert_rows("erc20_transfers", [row])
    out = await stop_on(store, data_dir, before, "duplicates")
    assert "erc20_transfers: 1 key" in out.reason


async def test_coverage_gap(store, data_dir, world):
    before = await baseline(store, data_dir, world)
    # day 1 re-fetched under claim 2: usdc_to misses two blocks in the middle
    day = (await store.query_dicts(
        "SELECT * FROM {db}.backfill_checkpoint_versions WHERE day_idx = 1"))[0]
    at = dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)
    s, e = day["start_block"], day["end_block"]
    mid = (s + e) // 2
    await store.insert_rows("backfill_checkpoint_versions", [{**day, "claim_id": 2, "updated_at": at}])
    ledger = []
    for st in STREAMS:
        parts = [(s, mid), (mid + 3, e)] if st == "usdc_to" else [(s, mid), (mid + 1, e)]
        ledger += [{"day_idx": 1, "stream": st, "from_block": a, "to_block": b, "log_count": 0,
                    "claim_id": 2, "fetched_at": at} for a, b in parts]
    await store.insert_rows("coverage_ledger_versions", ledger)
    out = await stop_on(store, data_dir, before, "coverage")
    assert f"usdc_to gap {mid}..{mid + 3}" in out.reason


async def test_unbalanced_exchange_flows(store, data_dir, world):
    before = await baseline(store, data_dir, world)
    day0 = (await store.query("SELECT start_block FROM {db}.day_blocks WHERE day_idx = 0"))[0][0]
    ch = Chain(block=day0 + 5)
    ch.tx()
    ch.usdc(addr(0xBEEF), EXCHANGE, 5_000_000)  # cash into the exchange that never leaves
    for r in ch.erc20:
        r["day_idx"] = 0
    await store.insert_rows("erc20_transfers", ch.erc20)
    out = await stop_on(store, data_dir, before, "infra_balance")
    assert "net 5000000" in out.reason and USDC in out.reason


async def test_prices_above_one(store, data_dir, world):
    before = await baseline(store, data_dir, world)
    day0 = (await store.query("SELECT start_block FROM {db}.day_blocks WHERE day_idx = 0"))[0][0]
    ch = Chain(block=day0 + 5)
    for i in range(250):  # 250 balanced trades at 2 USDC per share
        ch.trade(addr(0xB000 + i), addr(0xC000 + i), 777, 10_000_000, 20_000_000)
    for r in ch.erc20 + ch.erc1155:
        r["day_idx"] = 0
    await store.insert_rows("erc20_transfers", ch.erc20)
    await store.insert_rows("erc1155_transfers", ch.erc1155)
    out = await stop_on(store, data_dir, before, "sane_price")
    assert "max price 2" in out.reason


async def test_win_rate_outside_band_stops(store, data_dir, world):
    before = await baseline(store, data_dir, world)
    narrow = GateThresholds(win_rate_min=0.60, win_rate_max=0.70)
    out = await rebuild(store, PROFILE, narrow, data_dir, run_stats={}, run_id="bad")
    assert (out.ok, out.exit_code) == (False, 1)
    assert "win_rate" in out.reason and "outside" in out.reason
    assert [s.state for s in out.steps if s.state != "running"] == ["done", "done", "failed", "skipped"]
    assert await store.query(FINGERPRINT) == before
