"""Stop the engine at random points (SIGTERM, SIGKILL) and resume: the result stays exact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import engine_settings, query, stored_rows, truth

ARGS = ["run", "--no-ui", "--devchain-density", "small", "--devchain-profile", "flaky",
        "--shards", "3", "--no-rebuild", "--monitor-interval", "1"]


def _start(data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "console.cli", *ARGS, "--data-dir", str(data_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=data_dir.parent)


def _wait_for_work(data_dir: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Block until some shard has claimed a day (so a kill lands mid-run, not before it)."""
    deadline = time.monotonic() + timeout
    logs = data_dir / "backfill"
    while time.monotonic() < deadline and proc.poll() is None:
        if logs.is_dir() and any("claimed" in p.read_text() for p in logs.glob("worker-*.log")):
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_is_exact(tmp_path):
    data_dir = tmp_path / "data"
    rng = random.Random(7)
    kills = 0
    for _ in range(4):
        proc = _start(data_dir)
        _wait_for_work(data_dir, proc)
        time.sleep(rng.uniform(0.0, 1.5))  # where the kill lands is the random part
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
    assert kills >= 2, "the run finished before the kills could land"
    proc = _start(data_dir)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    settings = engine_settings(data_dir)
    for table in ("erc20_transfers", "erc1155_transfers", "condition_resolutions", "token_registrations"):
        assert stored_rows(settings, table) == truth(settings, table, "polymarket"), table
    counts = query(settings, "SELECT SUM(erc20_count), SUM(erc1155_count) FROM backfill_checkpoint")
    assert counts == [(len(truth(settings, "erc20_transfers", "polymarket")),
                       len(truth(settings, "erc1155_transfers", "polymarket")))]
    gaps = query(settings, """
        SELECT c.day_idx, l.stream, sum(l.to_block - l.from_block + 1) AS covered,
               any(c.end_block - c.start_block + 1) AS span, count() AS ranges
        FROM backfill_checkpoint c INNER JOIN coverage_ledger l ON l.day_idx = c.day_idx
        WHERE c.status = 'COMPLETE' GROUP BY c.day_idx, l.stream HAVING covered != span""")
    assert gaps == []


def test_sigterm_stops_cleanly_with_exit_3_and_resumes(tmp_path):
    data_dir = tmp_path / "data"
    proc = _start(data_dir)
    _wait_for_work(data_dir, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 3, out
    assert "stopping cleanly" in out
    proc = _start(data_dir)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    settings = engine_settings(data_dir)
    assert stored_rows(settings, "erc1155_transfers") == truth(settings, "erc1155_transfers", "polymarket")
