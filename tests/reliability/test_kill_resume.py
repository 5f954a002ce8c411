"""Issue 7.1: SIGKILL a hostile-provider run at 10+ moments, backfill *and* rebuild, then resume.

Most kills land at a named point (tests/reliability/killpoints.py: the child kills itself
there, so the test knows the point was reached): with data stored but no ledger row, between
the ledger and the COMPLETE checkpoint, inside an insert, between the two sides of the
checkpoint (ClickHouse says COMPLETE, the mirror does not), inside the rebuild's net-flow
insert, between two EXCHANGE TABLES of the swap, after the swap but before the report. A few
more land at seeded random moments after the child shows it is working. After every kill
the store must hold no COMPLETE day with a gap, no duplicate after FINAL and no row the
chain does not have; the final resume must equal the ground truth and an uninterrupted run's
rebuild, and on-complete.log must end with the success line.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from tests.reliability.checks import (
    DAYS, START, SUCCESS_LINE, assert_complete_days_tile, assert_exact, assert_no_duplicates,
    cli_child, derived_rows, last_line, reader, stop_child, truth_rows, url_settings,
)

SEED = 20240611


def _plan(rng: random.Random) -> list[tuple[str, dict | None, str]]:
    """(label, kill point, phase) in order; None = an outside SIGKILL at a random moment.

    Every named backfill point is the *first* such insert of its process, which every process
    reaches while a day is left to fetch (and none can be COMPLETE before these points); every
    rebuild point is reached by any run that gets to the rebuild. So each named kill lands."""
    backfill = [
        ("data rows stored, no ledger row yet",
         {"op": "insert", "table": "erc1155_transfers", "nth": 1, "when": "after"}),
        ("between data and ledger",
         {"op": "insert", "table": "coverage_ledger_versions", "nth": 1, "when": "before"}),
        ("inside a data insert",
         {"op": "insert", "table": "erc20_transfers", "nth": 1, "when": "during",
          "delay": rng.uniform(0.0, 0.004)}),
        ("inside a ledger insert",
         {"op": "insert", "table": "coverage_ledger_versions", "nth": 1, "when": "during",
          "delay": rng.uniform(0.0, 0.004)}),
        ("ledger stored, COMPLETE checkpoint not yet",
         {"op": "insert", "table": "backfill_checkpoint_versions", "status": "COMPLETE", "nth": 1,
          "when": "before"}),
        ("COMPLETE in ClickHouse, not yet in the mirror",
         {"op": "insert", "table": "backfill_checkpoint_versions", "status": "COMPLETE", "nth": 1,
          "when": "after"}),
        ("random moment while fetching", None),
        ("random moment while fetching", None),
    ]
    rebuild = [
        ("rebuild step 1: inside the net-flows insert",
         {"op": "command", "match": ["INSERT INTO", "net_flows_staging"], "nth": 1, "when": "during",
          "delay": rng.uniform(0.0, 0.05)}),
        ("rebuild step 3: positions staged, wallet_pnl not yet",
         {"op": "command", "match": ["INSERT INTO", "wallet_pnl_staging"], "nth": 1, "when": "before"}),
        ("rebuild swap: after the first EXCHANGE TABLES",
         {"op": "command", "match": "EXCHANGE TABLES", "nth": 1, "when": "after"}),
        ("rebuild swap: after the second EXCHANGE TABLES",
         {"op": "command", "match": "EXCHANGE TABLES", "nth": 2, "when": "after"}),
        ("rebuild: a step's record inserted",
         {"op": "insert", "table": "rebuild_steps", "nth": rng.randint(1, 4), "when": "after"}),
        ("rebuild: swapped, report not written", {"op": "report", "nth": 1, "when": "before"}),
        ("random moment during the rebuild", None),
    ]
    return [(label, spec, "backfill") for label, spec in backfill] + \
           [(label, spec, "rebuild") for label, spec in rebuild]


def _count(path_glob: list[Path], needle: str) -> int:
    return sum(p.read_text(encoding="utf-8", errors="replace").count(needle) for p in path_glob if p.is_file())


def _wait_then_kill(proc, data_dir: Path, phase: str, rng: random.Random) -> bool:
    """Wait until this child shows work of `phase`, then SIGKILL it after a seeded random delay.
    True when the kill landed (the child was still running)."""
    logs = data_dir / "backfill"
    files = (lambda: list(logs.glob("worker-*.log"))) if phase == "backfill" else \
        (lambda: [logs / "on-complete.log"])
    needle = "claimed" if phase == "backfill" else "step 1/4"
    before = _count(files(), needle)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and _count(files(), needle) <= before:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.6 if phase == "backfill" else 0.4))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    return True


def _check_store_after_kill(settings, label: str, want: dict[str, set]) -> None:
    """Whatever the kill interrupted: no COMPLETE day with a gap, no duplicate, no foreign row."""
    with reader(settings) as db:
        assert_complete_days_tile(settings, db=db)
        assert_no_duplicates(settings, db=db)
        for table, rows in want.items():
            extra = set(db.rows(table)) - rows
            assert not extra, f"after the kill '{label}': {len(extra)} {table} rows the chain does not have"


@pytest.mark.slow
def test_sigkill_during_backfill_and_rebuild_then_resume_equals_uninterrupted(tmp_path, hostile_chain,
                                                                               reference):
    data_dir = tmp_path / "data"
    argv = ["run", "--no-ui", "--rpc-url", hostile_chain.url, "--start-date", START, "--days", str(DAYS),
            "--shards", "3", "--monitor-interval", "1", "--data-dir", str(data_dir)]
    env = {"BACKFILL_RPC_TIMEOUT": "3"}  # the profile's 20 s "slow" answers become timeouts
    settings = url_settings(data_dir, hostile_chain.url)
    want = {t: set(truth_rows(settings, t)) for t in ("erc20_transfers", "erc1155_transfers")}
    rng = random.Random(SEED)
    landed: list[str] = []
    for label, spec, phase in _plan(rng):
        proc = cli_child(argv, cwd=tmp_path, spec=spec, **env)
        try:
            if spec is None:
                if _wait_then_kill(proc, data_dir, phase, rng):
                    landed.append(label)
                out, err = proc.communicate(timeout=180)
            else:
                out, err = proc.communicate(timeout=180)
                assert proc.returncode == -signal.SIGKILL, (
                    f"kill point '{label}' was never reached (exit {proc.returncode}):\n{out}\n{err}")
                landed.append(label)
        finally:
            stop_child(proc)
        _check_store_after_kill(settings, label, want)
    assert len(landed) >= 10, landed
    assert any("EXCHANGE" in label for label in landed)

    proc = cli_child(argv, cwd=tmp_path, **env)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        stop_child(proc)
    assert proc.returncode == 0, out + err
    assert_exact(settings)
    assert_no_duplicates(settings)
    assert assert_complete_days_tile(settings) == DAYS
    assert derived_rows(settings) == reference, "the resumed rebuild differs from an uninterrupted one"
    assert last_line(data_dir / "backfill" / "on-complete.log") == SUCCESS_LINE
