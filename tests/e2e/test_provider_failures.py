"""Failures no fault profile has, injected by a proxy in front of the devchain."""

from __future__ import annotations

import threading

import pytest

from console.devchain.process import spawn
from console.devchain.world import build_world
from tests.e2e.helpers import engine_settings, query, run, stored_rows, truth
from tests.e2e.proxy import FaultProxy, get_logs_range, poisoned_block

WORLD = build_world("small", seed=1)
START = WORLD.start_date.isoformat()


@pytest.fixture(scope="module")
def chain():
    with spawn(density="small", profile="clean", seed=1) as dc:
        yield dc


@pytest.fixture
def proxy(chain):
    with FaultProxy(chain.url) as p:
        yield p


def _settings(tmp_path, proxy, **over):
    base = dict(rpc_url=proxy.url, start_date=START, days=WORLD.days, rpc_timeout=5)
    base.update(over)
    return engine_settings(tmp_path / "data", **base)


def test_a_block_that_never_fetches_leaves_its_day_failed(tmp_path, proxy):
    bad_day = 1
    poison = WORLD.day_bounds(bad_day)[0] + 5000

    proxy.rules.append(poisoned_block(poison))
    settings = _settings(tmp_path, proxy, max_day_attempts=2)
    assert run(settings) == 4
    status = dict(query(settings, "SELECT day_idx, status FROM backfill_checkpoint"))
    assert status[bad_day] == "FAILED"
    assert all(s == "COMPLETE" for d, s in status.items() if d != bad_day)
    reason = query(settings, f"SELECT last_error FROM backfill_checkpoint WHERE day_idx = {bad_day}")[0][0]
    assert str(poison) in reason
    logs = (settings.data_dir / "backfill" / f"worker-{bad_day % 3}.log").read_text()
    assert "❌" in logs and "FAILED" in logs
    # Nothing of the failed day is claimed as covered; the other days are exact.
    want = [r for r in truth(settings, "erc1155_transfers", "polymarket") if r[-1] != bad_day]
    got = [r for r in stored_rows(settings, "erc1155_transfers") if r[-1] != bad_day]
    assert got == want


def test_wrong_chain_id_writes_nothing(tmp_path, proxy):
    proxy.rules.append(lambda p: {"jsonrpc": "2.0", "id": p["id"], "result": "0x1"}
                       if p.get("method") == "eth_chainId" else None)
    settings = _settings(tmp_path, proxy)
    from console.cli import main

    code = main(["run", "--no-ui", "--rpc-url", proxy.url, "--start-date", START, "--days", "3",
                 "--data-dir", str(settings.data_dir)])
    assert code == 2
    assert not settings.data_dir.exists()


def test_rpc_down_at_start_exits_4_and_completes_nothing(tmp_path, proxy):
    proxy.down = True
    settings = _settings(tmp_path, proxy)
    assert run(settings) == 4
    assert not (settings.data_dir / "clickhouse").exists()


def test_malformed_responses_are_refetched_never_stored(tmp_path, proxy):
    """Logs outside the asked range, and duplicated log indexes, on the first calls."""
    spoiled = {"n": 0}
    lock = threading.Lock()

    def spoil(payload, reply):
        rng = get_logs_range(payload)
        logs = reply.get("result")
        if not rng or not logs:
            return reply
        with lock:
            spoiled["n"] += 1
            n = spoiled["n"]
        if n > 6:
            return reply
        fake = dict(logs[0])
        if n % 2:
            fake["blockNumber"] = hex(rng[1] + 10)  # outside the asked range
        reply["result"] = logs + [fake]  # odd: outside; even: a duplicated (tx, logIndex)
        return reply

    proxy.rewrites.append(spoil)
    settings = _settings(tmp_path, proxy)
    assert run(settings) == 0
    assert spoiled["n"] > 6
    for table in ("erc20_transfers", "erc1155_transfers"):
        assert stored_rows(settings, table) == truth(settings, table, "polymarket")


def test_rpc_that_dies_mid_run_and_comes_back(tmp_path, proxy):
    state = {"n": 0}
    timer: list[threading.Timer] = []

    def flaky_outage(payload):
        state["n"] += 1
        if state["n"] == 12:
            proxy.down = True
            t = threading.Timer(3.0, lambda: setattr(proxy, "down", False))
            t.start()
            timer.append(t)
        return None

    proxy.rules.append(flaky_outage)
    settings = _settings(tmp_path, proxy)
    try:
        assert run(settings) == 0
    finally:
        for t in timer:
            t.cancel()
    assert state["n"] > 12
    for table in ("erc20_transfers", "erc1155_transfers"):
        assert stored_rows(settings, table) == truth(settings, table, "polymarket")
