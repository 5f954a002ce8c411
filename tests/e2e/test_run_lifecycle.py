"""The run's life as an operator sees it: refused reruns, --reset, status, periodic reports."""

from __future__ import annotations

import json
import subprocess
import sys

from console.cli import main
from tests.e2e.helpers import query

SMALL = ["--devchain-density", "small", "--devchain-profile", "clean", "--shards", "3",
         "--no-rebuild", "--monitor-interval", "1"]


def test_a_different_run_on_the_same_data_dir_is_refused_until_reset(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert main(["run", "--no-ui", *SMALL, "--data-dir", data]) == 0
    capsys.readouterr()
    assert main(["run", "--no-ui", *SMALL, "--data-dir", data, "--days", "2"]) == 2
    err = capsys.readouterr().err
    assert "different run" in err and "--reset" in err
    assert main(["run", "--no-ui", *SMALL, "--data-dir", data, "--days", "2", "--reset"]) == 0
    from console.settings import load_settings

    settings = load_settings({"data_dir": data})
    assert query(settings, "SELECT count(), countIf(status='COMPLETE') FROM backfill_checkpoint") == [(2, 2)]


def test_status_reports_the_finished_run(tmp_path, capsys):
    data = str(tmp_path / "data")
    assert main(["run", "--no-ui", *SMALL, "--data-dir", data]) == 0
    capsys.readouterr()
    assert main(["status", "--json", "--data-dir", data]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["days_total"] == 3 and body["days_done"] == 3
    assert body["running_pid"] is None
    assert body["simulated_chain"] is True


def test_report_every_writes_svg_and_png_while_running(tmp_path, capsys):
    data = tmp_path / "data"
    # A latency-bound run lasts long enough for a couple of reports.
    code = main(["run", "--no-ui", *SMALL, "--data-dir", str(data), "--report-every", "1s",
                 "--devchain-profile", "flaky"])
    assert code == 0
    svgs = sorted((data / "reports").glob("*.svg"))
    pngs = sorted((data / "reports").glob("*.png"))
    assert svgs and len(svgs) == len(pngs)
    assert "SIMULATED" in svgs[0].read_text()
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_files_are_private(tmp_path):
    data = tmp_path / "data"
    assert main(["run", "--no-ui", *SMALL, "--data-dir", str(data)]) == 0
    assert (data.stat().st_mode & 0o777) == 0o700
    loose = [p for p in data.rglob("*") if p.stat().st_mode & 0o077]
    assert loose == []


def test_help_answers_without_loading_heavy_libraries():
    code = ("import sys; from console.cli import main; main(['--help']); main(['run', '--help']); "
            "print(sorted(m for m in ('web3', 'chdb', 'textual', 'clickhouse_connect', 'aiohttp') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert "--shard-ids" in out and "exit codes" in out
