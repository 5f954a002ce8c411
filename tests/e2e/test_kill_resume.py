"""SIGTERM stops cleanly (exit 3) and a rerun resumes exactly. SIGKILL at named points is in
tests/reliability/test_kill_resume.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path


from tests.e2e.helpers import engine_settings, stored_rows, truth

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
