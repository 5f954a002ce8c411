"""Issue 7.4: a lost or damaged `data/state.sqlite` is rebuilt from ClickHouse's run-state tables.

The next run must say so (monitor.log, its events, and for a damaged file the console line),
must not fetch a COMPLETE day again (every eth_getLogs the provider sees is recorded by a
proxy), and must finish exactly. The commands that read the mirror without an engine
(`status --json`, `gates`, `rebuild`) must answer on a damaged one, not crash. And the
converse: an intact mirror over a store that lost the run must not be believed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from console.cli import main
from console.engine.launch import run_engine
from tests.e2e.proxy import FaultProxy, get_logs_range, poisoned_block
from tests.reliability.checks import (
    DAYS, WORLD, assert_complete_days_tile, assert_exact, assert_no_duplicates, reader, url_settings,
)

STATE = "state.sqlite"
REBUILT = "rebuilt from ClickHouse's run-state tables"


@pytest.fixture
def proxy(clean_chain):
    with FaultProxy(clean_chain.url) as p:
        p.asked: list[tuple[int, int]] = []

        def record(payload):
            rng = get_logs_range(payload)
            if rng:
                p.asked.append(rng)
            return None

        p.rules.append(record)
        yield p


def _run(settings, said: list[str] | None = None) -> int:
    say = (lambda m: said.append(m)) if said is not None else (lambda m: None)
    return asyncio.run(asyncio.wait_for(run_engine(settings, say=say), 240))


def _events(data_dir: Path) -> list[str]:
    conn = sqlite3.connect(data_dir / STATE)
    try:
        return [m for (m,) in conn.execute("SELECT message FROM events ORDER BY id")]
    finally:
        conn.close()


def _monitor_log(data_dir: Path) -> str:
    return (data_dir / "backfill" / "monitor.log").read_text(encoding="utf-8")


def _complete_days(settings) -> dict[int, tuple[int, int]]:
    with reader(settings) as db:
        return {d: (a, b) for d, a, b in db.query(
            "SELECT day_idx, start_block, end_block FROM backfill_checkpoint WHERE status = 'COMPLETE'")}


def _damage(data_dir: Path, how: str) -> None:
    path = data_dir / STATE
    size = path.stat().st_size
    if how == "deleted":
        for suffix in ("", "-wal", "-shm"):
            p = data_dir / (STATE + suffix)
            if p.exists():
                p.unlink()
    elif how == "emptied":
        os.truncate(path, 0)
    elif how == "truncated":
        os.truncate(path, size // 2)
    elif how == "garbage header":
        with open(path, "r+b") as f:
            f.write(b"this is no sqlite file " * 8)
    elif how == "garbage pages":
        with open(path, "r+b") as f:
            f.seek(4096)
            f.write(bytes((i * 37 + 11) % 256 for i in range(3 * 4096)))
    else:  # pragma: no cover
        raise AssertionError(how)


def test_deleted_mirror_is_rebuilt_and_complete_days_are_not_fetched_again(tmp_path, proxy):
    poisoned_day = 1
    poison = WORLD.day_bounds(poisoned_day)[0] + 4000


    poison_rule = poisoned_block(poison)
    proxy.rules.insert(0, poison_rule)
    settings = url_settings(tmp_path / "data", proxy.url, max_day_attempts=1)
    assert _run(settings) == 4  # day 1 could not be fetched: FAILED; days 0 and 2 COMPLETE
    done = _complete_days(settings)
    assert sorted(done) == [d for d in range(DAYS) if d != poisoned_day]

    proxy.rules.remove(poison_rule)  # the provider recovers; meanwhile the mirror is lost
    _damage(settings.data_dir, "deleted")
    proxy.asked.clear()
    assert _run(url_settings(tmp_path / "data", proxy.url)) == 0
    refetched = [(a, b) for a, b in proxy.asked for s, e in done.values() if a <= e and b >= s]
    assert not refetched, f"COMPLETE days fetched again after the mirror was lost: {refetched[:5]}"
    assert proxy.asked, "day 1 was not fetched at all"
    assert REBUILT in _monitor_log(settings.data_dir)
    assert any(REBUILT in m for m in _events(settings.data_dir))
    assert_exact(settings)
    assert_no_duplicates(settings)
    assert assert_complete_days_tile(settings) == DAYS


@pytest.mark.slow
def test_damaged_mirror_is_moved_aside_rebuilt_and_nothing_is_fetched_again(tmp_path, proxy):
    settings = url_settings(tmp_path / "data", proxy.url)
    assert _run(settings) == 0
    data_dir = settings.data_dir
    for how in ("emptied", "truncated", "garbage header", "garbage pages"):
        rebuilt_before = _monitor_log(data_dir).count(REBUILT)
        _damage(data_dir, how)
        proxy.asked.clear()
        said: list[str] = []
        assert _run(settings, said) == 0, (how, said)
        assert proxy.asked == [], f"{how}: COMPLETE days fetched again: {proxy.asked[:5]}"
        assert _monitor_log(data_dir).count(REBUILT) == rebuilt_before + 1, f"{how}: monitor.log says nothing"
        assert any(REBUILT in m for m in _events(data_dir)), how
        if how != "emptied":  # an empty file is a valid (new) SQLite database, nothing to move aside
            assert any("damaged" in m and "rebuilding it from ClickHouse" in m for m in said), (how, said)
            assert list(data_dir.glob(f"{STATE}.damaged-*")), f"{how}: the damaged file was not kept"
        assert_exact(settings)
        assert_no_duplicates(settings)
        assert assert_complete_days_tile(settings) == DAYS


# --- the offline commands on a damaged mirror: an answer, not a traceback ------------------------
@pytest.fixture(scope="module")
def damaged_run(tmp_path_factory, clean_chain):
    settings = url_settings(tmp_path_factory.mktemp("damaged") / "data", clean_chain.url)
    assert _run(settings) == 0
    _damage(settings.data_dir, "garbage header")
    return settings


def _main(argv: list[str], capsys) -> tuple[object, str, str]:
    try:
        code = main(argv)
    except Exception as exc:  # what the operator gets: a traceback and exit 1
        code = f"uncaught {type(exc).__name__}: {exc}"
    out, err = capsys.readouterr()
    return code, out, err


def test_status_json_is_json_even_when_the_mirror_is_damaged(damaged_run, capsys):
    code, out, err = _main(["status", "--json", "--data-dir", str(damaged_run.data_dir)], capsys)
    assert code == 0, (code, err)
    json.loads(out)


@pytest.mark.parametrize("command", ["gates", "rebuild"])
def test_offline_commands_on_a_damaged_mirror_answer_clearly(damaged_run, capsys, command):
    code, out, err = _main([command, "--data-dir", str(damaged_run.data_dir)], capsys)
    assert code in (0, 1, 2), (code, out, err)
    assert "Traceback" not in out + err
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and STATE in lines[0], err


# --- the converse: the mirror is intact, the store lost the run ----------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("lost,rebuild", [("database dropped", False), ("embedded store deleted", True)])
def test_a_store_that_lost_the_run_is_refilled_not_trusted(tmp_path, proxy, lost, rebuild):
    settings = url_settings(tmp_path / "data", proxy.url, no_rebuild=not rebuild)
    assert _run(settings) == 0
    if lost == "database dropped":
        with reader(settings) as db:
            db.query(f"DROP DATABASE `{settings.database}`")
    else:
        shutil.rmtree(settings.data_dir / "clickhouse")
    box: dict = {}

    async def watched() -> int:
        async def ready(sup):
            box["sup"] = sup

        task = asyncio.ensure_future(run_engine(settings, say=lambda m: None, on_ready=ready))
        waiting_since = None
        while not task.done():  # a single host has no one to wait for: waiting long = hung
            await asyncio.sleep(0.1)
            sup = box.get("sup")
            if sup is not None and sup.engine_state == "waiting":
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since > 10:
                    sup.abort()
                    await task
                    return "hung waiting for days the store does not have"
        return task.result()

    code = asyncio.run(watched())
    assert code == 0 or (code == 4 and "store" in (box["sup"].stop_reason or "")), code
    if code == 0:
        assert_exact(settings)
        assert assert_complete_days_tile(settings) == DAYS
