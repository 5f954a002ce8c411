"""`attach`: the same dashboard over a headless run, through the SQLite mirror (issue 6, Tests).

A real engine runs headless (`run_engine` on a background thread, no UI) on a slowed devchain;
the console reads what it publishes into data/state.sqlite and writes commands into its
`commands` table, exactly as `backfill-console attach` does. The tests check the engine's
side too: its runtime, its event log, the commands table.
"""

from __future__ import annotations

import re
import sqlite3
import time

from console.engine.remote import RemoteSupervisor
from console.engine.state import STATE_FILE
from console.report import render_snapshot
from console.screens import ConfirmScreen
from console.widgets import ShardTable
from tests.ui.engine_fixtures import (  # noqa: F401 - fixtures
    EngineRun, acked, app_shard, footer_label, log_text, run_ended, slow_chain, start_engine, until,
)

SIZE = (160, 48)
CONTROL_KEYS = ("p", "P", "r", "g", "a")


def _published(eng: EngineRun) -> None:
    """Block until the headless engine has published a running snapshot into its mirror."""
    remote = RemoteSupervisor(eng.settings.data_dir, live=False)

    def running() -> bool:
        try:
            return remote.published_at() is not None and remote.snapshot().engine_state == "running"
        except FileNotFoundError:
            return False

    eng.wait(running, 30, "a published snapshot of the running engine")


def _commands(eng: EngineRun) -> list[tuple]:
    conn = sqlite3.connect(f"file:{eng.settings.data_dir / STATE_FILE}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT command, arg, result FROM commands ORDER BY id").fetchall()
    finally:
        conn.close()


def _days_done_shown(app) -> int:
    """Days done as the status bar shows them ("days N/M")."""
    text = app.dashboard.status_bar.render().plain
    m = re.search(r"days (\d+)/(\d+)", text)
    assert m, text
    return int(m.group(1))


async def test_attached_console_sees_progress_and_its_pause_reaches_the_engine(start_engine, make_app):
    eng = start_engine()
    _published(eng)
    app = make_app(RemoteSupervisor(eng.settings.data_dir), refresh_hz=10, drives_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, 10, "a first snapshot", eng)
        assert footer_label(app, "q") == ("Detach", True)
        assert footer_label(app, "p") == ("Pause", True)
        assert "READ-ONLY" not in app.dashboard.status_bar.render().plain
        # Progress: days done grows in the status bar as the headless engine completes days.
        first = _days_done_shown(app)
        await until(pilot, lambda: _days_done_shown(app) > first, 20, "days done growing in the status bar", eng)

        # `p` on shard 0 goes through the commands table and the engine pauses that shard.
        table = app.screen.query_one(ShardTable)
        assert table.selected_shard_id == 0
        assert eng.runtime(0).state != "paused"
        sent = time.monotonic()
        await pilot.press("p")
        await acked(pilot, app, "pause shard #0 requested")
        await until(pilot, lambda: eng.runtime(0).state == "paused", 5, "the engine's shard 0 paused", eng)
        # The engine polls its commands table every 0.5 s: "within a second or two" (3 s: CI is busy).
        assert time.monotonic() - sent < 3.0, "the pause reached the engine within a couple of seconds"
        assert not eng.sup.workers[0].resume.is_set()  # the worker really holds at its next checkpoint
        assert [r.state for r in (eng.runtime(1), eng.runtime(2))].count("paused") == 0
        assert any(e.message == "attached console: pause 0" for e in eng.sup.events)
        await until(pilot, lambda: _commands(eng) == [("pause", 0, "applied")], 5, "the command marked applied", eng)
        # ... and the attached console sees it in the next publication.
        await until(pilot, lambda: getattr(app_shard(app, 0), "state", None) == "paused", 5,
                    "the mirror shows shard 0 paused", eng)
        await pilot.pause()
        assert table.get_cell(0, "state").plain == "⏸ paused"
        assert footer_label(app, "p") == ("Resume", True)
        sent = time.monotonic()
        await pilot.press("p")
        await until(pilot, lambda: eng.runtime(0).state != "paused", 5, "the engine's shard 0 resumed", eng)
        assert time.monotonic() - sent < 3.0, "the resume reached the engine within a couple of seconds"
        assert _commands(eng)[-1][:2] == ("resume", 0)


async def test_read_only_attach_sends_nothing_and_disables_every_control_key(start_engine, make_app):
    eng = start_engine()
    _published(eng)
    remote = RemoteSupervisor(eng.settings.data_dir, read_only=True)
    app = make_app(remote, refresh_hz=10, drives_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, 10, "a first snapshot", eng)
        assert "READ-ONLY" in app.dashboard.status_bar.render().plain
        for key in CONTROL_KEYS:
            label = footer_label(app, key)
            assert label is not None and label[1] is False, (key, label)  # shown, greyed out
        await pilot.press(*CONTROL_KEYS)
        await until(pilot, lambda: log_text(app).count("read-only: ") == len(CONTROL_KEYS), 5,
                    "every key answered")
        assert not isinstance(app.screen, ConfirmScreen)
        # Even a direct call on the read-only supervisor writes nothing.
        remote.pause_shard(0)
        remote.abort()
        # Reading still works: the run goes on under the console's eyes.
        first = _days_done_shown(app)
        await until(pilot, lambda: _days_done_shown(app) > first, 20, "days done growing in the status bar", eng)
        assert app.is_running
    assert _commands(eng) == []
    assert not any(eng.runtime(s).state == "paused" for s in range(3))
    assert not any("attached console" in e.message for e in eng.sup.events)
    assert eng.sup.exit_code is None and eng.thread.is_alive()


async def test_quitting_the_attached_console_leaves_the_headless_run_going(start_engine, make_app):
    eng = start_engine(days=12)
    _published(eng)
    app = make_app(RemoteSupervisor(eng.settings.data_dir), refresh_hz=10, drives_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, 10, "a first snapshot", eng)
        await pilot.press("q")  # detach: no confirmation, nothing sent
        await until(pilot, lambda: not app.is_running, 5, "the console detached")
    assert app.return_code == 0
    assert eng.thread.is_alive() and eng.sup.exit_code is None, "the run went on"
    assert _commands(eng) == []
    eng.thread.join(60)
    assert not eng.thread.is_alive()
    assert eng.code == 0, eng.sup.stop_reason
    assert all(d.status == "COMPLETE" for d in eng.sup.days.values())


async def test_an_attached_console_shows_how_the_run_ended(start_engine, make_app, tmp_path):
    eng = start_engine(days=6)
    _published(eng)
    app = make_app(RemoteSupervisor(eng.settings.data_dir), refresh_hz=10, drives_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None, 10, "a first snapshot", eng)
        await until(pilot, lambda: run_ended(app), 60, "the run ended, seen through the mirror")
        await until(pilot, lambda: "run ended (done, exit 0)" in log_text(app), 5, "the outcome announced")
        eng.thread.join(30)
        assert eng.code == 0
        log = log_text(app)
        # The run's last engine events are drawn (not held back by the event log's batching),
        # and before the console's own "run ended" line.
        assert log.index("backfill complete: 6 days COMPLETE") < log.index("relaxed gates: all passed") \
            < log.index("run ended (done, exit 0): backfill complete (--no-rebuild)")
        assert "DONE" in app.dashboard.status_bar.render().plain
        # Nothing left to control: the keys grey out, and still answer.
        for key in CONTROL_KEYS:
            label = footer_label(app, key)
            assert label is not None and label[1] is False, (key, label)
        await pilot.press("p", "a")
        await until(pilot, lambda: log_text(app).count("the run has ended: ") == 2, 5, "both keys answered")
        assert not isinstance(app.screen, ConfirmScreen)
        assert footer_label(app, "q") == ("Detach", True)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, 5, "the console left")
    assert app.return_code == 0
    assert _commands(eng) == []
    # A report of the finished run (`backfill-console screenshot`) is a picture: no "run ended,
    # press q" toast or log line in it.
    svg = render_snapshot(RemoteSupervisor(eng.settings.data_dir, read_only=True, live=False),
                          tmp_path / "end.svg", (160, 48)).read_text()
    assert "DONE" in svg and "relaxed&#160;gates:&#160;all&#160;passed" in svg
    assert "leave" not in svg
