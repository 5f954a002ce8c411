"""Issue 7.5: concurrency.

- A second `run` on a data dir that a live run holds is refused at once (exit 2, one line
  naming the holder's pid) and writes nothing; `gates` and `rebuild` are refused the same
  way; `status` reports the live run. The first run is parked at a known point (its first
  data insert, tests/reliability/killpoints.py "hold"), so this is no race against a timer,
  and it then finishes exactly: the refused process corrupted nothing.
- Two supervisors with disjoint --shard-ids and their own data dirs share ONE store
  (`--clickhouse chdb:///shared/path`; chDB allows one process per path, so both engines run
  in this process, concurrently, through asyncio.gather): the result is exact, and the host
  running shard 0 waits for every day and runs the rebuild, equal to an uninterrupted run's.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from console.cli import main
from console.engine.launch import run_engine
from console.engine.writer import Writer
from tests.reliability.checks import (
    DAYS, START, SUCCESS_LINE, assert_complete_days_tile, assert_exact, assert_no_duplicates, cli_child,
    derived_rows, last_line, stop_child, url_settings,
)


def _tree(root: Path) -> set[str]:
    """Every path under the data dir, except the embedded ClickHouse's own files."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if "clickhouse" not in p.relative_to(root).parts}


def test_second_process_on_the_same_data_dir_is_refused_and_corrupts_nothing(tmp_path, clean_chain, capsys):
    data_dir = tmp_path / "data"
    marker, release = tmp_path / "reached", tmp_path / "release"
    argv = ["run", "--no-ui", "--rpc-url", clean_chain.url, "--start-date", START, "--days", str(DAYS),
            "--shards", "3", "--no-rebuild", "--data-dir", str(data_dir)]
    first = cli_child(argv, cwd=tmp_path, spec={"op": "insert", "table": "erc20_transfers", "nth": 1,
                                                "when": "hold", "marker": str(marker),
                                                "release": str(release)})
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), f"the first run never reached its first insert: {first.communicate()}"
        before = _tree(data_dir)

        second = cli_child(argv, cwd=tmp_path)
        try:
            out, err = second.communicate(timeout=120)
        finally:
            stop_child(second)
        assert second.returncode == 2, (out, err)
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        assert "in use by another backfill-console" in lines[0] and f"pid {first.pid}" in lines[0], lines[0]
        assert _tree(data_dir) == before, "the refused process wrote into the data dir"

        for command in (["gates"], ["rebuild"]):
            code = main([*command, "--data-dir", str(data_dir)])
            err = capsys.readouterr().err
            assert code == 2, (command, err)
            assert f"a run is active (pid {first.pid})" in err, (command, err)
        assert main(["status", "--data-dir", str(data_dir)]) == 0
        assert f"running (pid {first.pid})" in capsys.readouterr().out
        assert _tree(data_dir) == before

        release.write_text("go")
        out, err = first.communicate(timeout=180)
        assert first.returncode == 0, (out, err)
    finally:
        release.write_text("go")
        stop_child(first)
    settings = url_settings(data_dir, clean_chain.url)
    assert_exact(settings)
    assert_no_duplicates(settings)
    assert assert_complete_days_tile(settings) == DAYS


@pytest.mark.slow
def test_two_supervisors_with_disjoint_shards_share_one_store(tmp_path, hostile_chain, reference,
                                                             monkeypatch):
    """Worst case of a normal start: host A's first write to the store (its seed of the day
    table) is slow and happens after host B has finished (a slower link to the shared store)."""
    shared = f"chdb://{tmp_path / 'shared-clickhouse'}"
    host_a = url_settings(tmp_path / "host-a", hostile_chain.url, clickhouse=shared, shard_ids="0",
                          no_rebuild=False)
    host_b = url_settings(tmp_path / "host-b", hostile_chain.url, clickhouse=shared, shard_ids="1,2",
                          no_rebuild=False)
    sups: dict[str, object] = {}
    gate: dict[str, object] = {}
    original = Writer._flush

    async def flush(self, batch):
        a = sups.get("a")
        if a is not None and self is a.writer and not gate.get("passed"):
            gate["passed"] = True
            await gate["b_done"].wait()
        return await original(self, batch)

    monkeypatch.setattr(Writer, "_flush", flush)

    def keep(name):
        def ready(sup):
            sups[name] = sup
        return ready

    async def both():
        gate["b_done"] = asyncio.Event()
        a = asyncio.ensure_future(run_engine(host_a, say=lambda m: None, on_ready=keep("a")))
        b = asyncio.ensure_future(run_engine(host_b, say=lambda m: None, on_ready=keep("b")))
        try:
            code_b = await asyncio.wait_for(asyncio.shield(b), 120)
            gate["b_done"].set()
            # Host B is done and its writes are stored. Once host A has its own day, the shared
            # store must show every day COMPLETE (that is what host A waits for).
            deadline = time.monotonic() + 120
            while not a.done() and time.monotonic() < deadline and not all(
                    d.status == "COMPLETE" for d in sups["a"].owned_days()):
                await asyncio.sleep(0.05)
            if not a.done():
                seen = await sups["a"].store.query(
                    "SELECT day_idx, status FROM {db}.backfill_checkpoint ORDER BY day_idx")
                assert seen == [(d, "COMPLETE") for d in range(DAYS)], \
                    f"both hosts finished their days, yet the shared store shows {seen}"
            code_a = await asyncio.wait_for(asyncio.shield(a), 120)
            return code_a, code_b
        finally:
            gate["b_done"].set()
            for t in (a, b):
                t.cancel()
            await asyncio.gather(a, b, return_exceptions=True)

    assert asyncio.run(both()) == (0, 0)
    assert gate.get("passed"), "host A's first write was never held: the case did not happen"
    assert "the host running shard 0 runs the rebuild" in (sups["b"].stop_reason or "")
    for name, own in (("a", {0}), ("b", {1, 2})):  # each host fetched only its own shards' days
        days = sups[name].days.values()
        assert {d.worker_id for d in days if d.status == "COMPLETE"} <= own, name
    assert_exact(host_a)
    assert_no_duplicates(host_a)
    assert assert_complete_days_tile(host_a) == DAYS
    assert last_line(host_a.data_dir / "backfill" / "on-complete.log") == SUCCESS_LINE
    assert not (host_b.data_dir / "backfill" / "on-complete.log").exists()
    assert derived_rows(host_a) == reference
