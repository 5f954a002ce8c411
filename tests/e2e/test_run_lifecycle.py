"""The run's life as an operator sees it: refused reruns, --reset, status, periodic reports."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from console.cli import main
from console.engine import gates
from console.engine.gates import SOURCE_TABLES
from console.engine.launch import run_engine
from console.engine.store import Store
from tests.e2e.helpers import engine_settings, query
from tests.rebuild.builder import hold_merges

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


def test_pause_all_sent_while_shards_are_starting_holds_every_shard(tmp_path):
    """The console can send "pause all" as soon as the first shard shows, before the others are
    launched. Every shard must then stay paused, not only those that existed when it was sent,
    until "resume all"; the run then completes."""
    settings = engine_settings(tmp_path / "data", days=3)
    seen: dict = {}

    async def ready(sup) -> None:
        launch = sup._launch

        async def launch_then_pause_all(shard_id: int, restart: bool) -> None:
            await launch(shard_id, restart)
            if shard_id == 0:  # shards 1 and 2 are not launched yet
                sup.pause_all()

        sup._launch = launch_then_pause_all
        seen["sup"] = sup

    def all_paused(sup) -> bool:
        shards = [sup.runtimes.get(s) for s in range(3)]
        return all(rt is not None and rt.state == "paused" for rt in shards) and sup.engine_state == "paused"

    async def scenario() -> int:
        run = asyncio.ensure_future(run_engine(settings, on_ready=ready, say=lambda m: None))
        while "sup" not in seen or not all_paused(seen["sup"]):
            assert not run.done(), f"the run ended (code {run.result()}) with shards never paused"
            if "sup" in seen:
                done = [s for s, rt in seen["sup"].runtimes.items() if rt.state == "done"]
                assert not done, f"shards {done} ran to the end through the pause"
            await asyncio.sleep(0.02)
        sup = seen["sup"]
        # Shards 1 and 2 were held from their launch: they never claimed a day.
        assert [sup.runtimes[s].day_idx for s in (1, 2)] == [None, None]
        sup.resume_all()
        return await asyncio.wait_for(run, 120)

    assert asyncio.run(asyncio.wait_for(scenario(), 180)) == 0
    assert query(settings, "SELECT count(), countIf(status='COMPLETE') FROM backfill_checkpoint") == [(3, 3)]


def test_a_finished_backfill_compacts_the_source_tables_before_its_closing_gates(tmp_path, monkeypatch):
    monkeypatch.setattr(gates, "COMPACT_MIN_ROWS", 1)  # three small days
    # One shard: its days complete one after another, so each day's rows are their own insert.
    settings = engine_settings(tmp_path / "data", days=3, shards=1)

    async def prepare() -> None:  # the engine's own schema, with background merges held
        store = await Store.open(settings.dsn, settings.database)
        try:
            await hold_merges(store, SOURCE_TABLES)
        finally:
            await store.close()

    asyncio.run(prepare())
    box: dict = {}
    assert asyncio.run(run_engine(settings, on_ready=lambda sup: box.setdefault("sup", sup),
                                  say=lambda m: None)) == 0
    events = [e.message for e in box["sup"].events]
    compacted = [i for i, m in enumerate(events) if m.startswith("compacted the source tables")]
    assert compacted and compacted[0] < events.index("relaxed gates started"), events
    parts = query(settings, "SELECT table, count() FROM system.parts WHERE database = 'backfill' AND active "
                            f"AND table IN {SOURCE_TABLES} GROUP BY table")
    assert sorted(parts) == sorted((t, 1) for t in SOURCE_TABLES)
