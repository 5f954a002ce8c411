"""What every reliability test asserts about a finished run, and how it starts a CLI child.

The row comparisons come from tests/e2e/helpers.py (stored rows vs the devchain world's own
ground truth); here are the checks on top: no duplicate key after FINAL, every COMPLETE day
tiled exactly by its ledger for every stream, the rebuild's derived tables, a CLI child with
a kill point armed.
"""

from __future__ import annotations

import socket

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

from console.devchain.world import build_world
from console.engine.store import Store
from tests.e2e.helpers import TABLES, engine_settings, normalise, truth

ROOT = Path(__file__).resolve().parents[2]
WORLD = build_world("small", seed=1)
START = WORLD.start_date.isoformat()
DAYS = WORLD.days
SUCCESS_LINE = "✅ REBUILD COMPLETE - READY FOR PRODUCTION"
KEYS = {"erc20_transfers": "tx_hash, log_index", "erc1155_transfers": "tx_hash, log_index, batch_index",
        "condition_resolutions": "tx_hash, log_index", "token_registrations": "tx_hash, log_index"}
DERIVED = {"positions": "wallet, token_id", "wallet_pnl": "wallet", "net_flows": "tx_hash, wallet, token_id"}


def url_settings(data_dir: Path, url: str, **over):
    """Settings for a run (or a read-back) against an already running chain at `url`."""
    base = dict(rpc_url=url, start_date=START, days=DAYS, rpc_timeout=3)
    base.update(over)
    return engine_settings(data_dir, **base)


class Reader:
    """One store connection for many read-back queries (the helpers open one per query)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.store = self.loop.run_until_complete(
            Store.open(settings.dsn, settings.database, apply_schema=False))
        self.loop.run_until_complete(self.store.command("USE {db}"))

    def use(self, settings) -> "Reader":
        """Point this connection at another run's database on the same store."""
        self.settings = settings
        self.store.database = settings.database
        self.loop.run_until_complete(self.store.command("USE {db}"))
        return self

    def query(self, sql: str) -> list[tuple]:
        return self.loop.run_until_complete(self.store.query(sql))

    def rows(self, table: str) -> list[tuple]:
        dicts = self.loop.run_until_complete(self.store.query_dicts(f"SELECT * FROM {table} FINAL"))
        return normalise(dicts, TABLES[table])

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.store.close())
        finally:
            self.loop.close()


@contextlib.contextmanager
def reader(settings):
    r = Reader(settings)
    try:
        yield r
    finally:
        r.close()


@contextlib.contextmanager
def _using(settings, db: "Reader | None"):
    if db is not None:
        yield db
    else:
        with reader(settings) as own:
            yield own


_TRUTH: dict[tuple, list[tuple]] = {}


def truth_rows(settings, table: str, scope: str = "polymarket") -> list[tuple]:
    """The world's rows (tests/e2e/helpers.truth), computed once per world, table and scope."""
    key = (settings.devchain_density, settings.devchain_seed, table, scope)
    if key not in _TRUTH:
        _TRUTH[key] = truth(settings, table, scope)
    return _TRUTH[key]


def assert_exact(settings, scope: str = "polymarket", db: "Reader | None" = None) -> None:
    """Every data table equals the ground truth (after FINAL), and the checkpoint counts agree."""
    with _using(settings, db) as r:
        for table in TABLES:
            want = truth_rows(settings, table, scope)
            assert want, f"the world has no {table} rows: the comparison would prove nothing"
            got = r.rows(table)
            assert len(got) == len(want), (table, len(got), len(want))
            assert got == want, table
        counts = r.query("SELECT SUM(erc20_count), SUM(erc1155_count) FROM backfill_checkpoint")
    assert counts == [(len(truth_rows(settings, "erc20_transfers", scope)),
                       len(truth_rows(settings, "erc1155_transfers", scope)))], counts


def assert_no_duplicates(settings, db: "Reader | None" = None) -> None:
    with _using(settings, db) as r:
        for table, key in KEYS.items():
            dups = r.query(f"SELECT {key}, count() AS n FROM {table} FINAL GROUP BY {key} "
                           f"HAVING n > 1 LIMIT 5")
            assert dups == [], (table, dups)


def _tiling_flaw(ranges: list[tuple[int, int]], start: int, end: int) -> str | None:
    """Independent of the engine's own check: None when `ranges` tile [start, end] exactly."""
    expect = start
    for a, b in sorted(ranges):
        if a != expect or b < a:
            return f"{'overlap' if a < expect else 'gap'} at block {expect} (next range {a}-{b})"
        expect = b + 1
    return None if expect == end + 1 else f"gap from block {expect} to {end}"


def assert_complete_days_tile(settings, scope: str = "polymarket", db: "Reader | None" = None) -> int:
    """Every COMPLETE day: each of its streams' current ledger tiles [start, end] exactly."""
    profile = settings.profile()
    with _using(settings, db) as r:
        days = r.query("SELECT day_idx, day, start_block, end_block FROM backfill_checkpoint "
                       "WHERE status = 'COMPLETE'")
        ledger = r.query("SELECT day_idx, stream, from_block, to_block FROM coverage_ledger")
    for day_idx, day, start, end in days:
        assert start and end and start <= end, (day_idx, start, end)
        for stream in profile.streams(day, scope):
            ranges = [(a, b) for d, s, a, b in ledger if d == day_idx and s == stream.name]
            assert ranges, f"day {day_idx} COMPLETE without any ledger row for {stream.name}"
            gap = _tiling_flaw(ranges, start, end)
            assert gap is None, f"day {day_idx} COMPLETE but {stream.name}: {gap}"
    return len(days)


def derived_rows(settings) -> dict[str, list[tuple]]:
    """The rebuild's production tables, as sorted row lists."""
    with reader(settings) as r:
        return {t: sorted(tuple(row) for row in r.query(f"SELECT * FROM {t} ORDER BY {key}"))
                for t, key in DERIVED.items()}


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli_child(argv: list[str], *, cwd: Path, spec: dict | None = None, **env: str) -> subprocess.Popen:
    """`backfill-console ARGV` in a child process, with a kill point armed when `spec` is given."""
    cmd = [sys.executable, "-m", "tests.reliability.killpoints", json.dumps(spec or {}), *argv]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=child_env(**env))


def stop_child(proc: subprocess.Popen) -> None:
    """Teardown: a child still running is killed (by its own pid) and reaped."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):
        pass


def closed_port() -> int:
    """A loopback port nobody listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
