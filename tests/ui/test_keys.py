"""Keys drive the supervisor; every key is acknowledged; read-only sends nothing."""

from __future__ import annotations

import dataclasses

from console.screens import ConfirmScreen, HelpScreen, ShardDetailScreen
from console.widgets import EventLog, ShardTable
from tests.ui.conftest import refresh, wait_for
from tests.ui.fake_supervisor import FakeSupervisor

SIZE = (160, 48)


def footer_label(app, key: str) -> tuple[str, bool] | None:
    active = app.screen.active_bindings.get(key)
    if active is None:
        return None
    return active.binding.description, active.enabled


def log_text(app) -> str:
    log = app.dashboard.query_one(EventLog)
    return "\n".join(strip.text for strip in log.lines)


async def test_pause_selected_shard_flips_label(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ShardTable)
        assert table.selected_shard_id == 0
        assert footer_label(app, "p") == ("Pause", True)
        await pilot.press("p")
        assert fake.commands == [("pause_shard", 0)]
        assert "pause shard #0 requested" in log_text(app)
        assert any("pause shard #0" in n.message for n in app._notifications)
        # The engine acts: the next snapshot shows shard 0 paused.
        fake.update_shard(0, state="paused", logs_per_s=0.0)
        await refresh(pilot)
        assert table.get_cell("0", "state").plain == "⏸ paused"
        assert footer_label(app, "p") == ("Resume", True)
        await pilot.press("p")
        assert fake.commands[-1] == ("resume_shard", 0)


async def test_pause_all_and_resume_all(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        assert footer_label(app, "P") == ("Pause all", True)
        await pilot.press("P")
        assert fake.commands == [("pause_all",)]
        shards = tuple(
            dataclasses.replace(s, state="paused") if s.state in ("running", "stalled", "restarting") else s
            for s in fake.current.shards
        )
        fake.update(shards=shards, engine_state="paused")
        await refresh(pilot)
        assert footer_label(app, "P") == ("Resume all", True)
        await pilot.press("P")
        assert fake.commands[-1] == ("resume_all",)


async def test_restart_confirm_cancel_and_escape(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down")  # shard 2
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.focused is not None and app.focused.id == "cancel"  # Cancel focused
        await pilot.press("enter")  # enter on the focused Cancel
        assert not isinstance(app.screen, ConfirmScreen)
        assert fake.commands == []
        await pilot.press("r")
        await pilot.press("escape")
        assert not isinstance(app.screen, ConfirmScreen)
        assert fake.commands == []
        assert "restart shard #2 cancelled" in log_text(app)
        await pilot.press("r")
        await pilot.press("tab", "enter")  # move to Restart and choose it
        assert fake.commands == [("restart_shard", 2)]
        assert "restart shard #2 requested" in log_text(app)


async def test_abort_confirm_exits_with_engine_code(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert fake.commands == []
        await pilot.press("a")
        await pilot.click("#confirm")
        assert fake.commands == [("abort",)]
        assert app.is_running
        fake.update(engine_state="aborted", exit_code=3, stop_reason="operator abort")
        await refresh(pilot)
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 3


async def test_gates_key(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("g")
        assert fake.commands == [("run_gates",)]
        assert "gates run requested" in log_text(app)


async def test_screenshot_writes_svg_and_png(fake, make_app, tmp_path):
    app = make_app(fake, reports_dir=tmp_path / "reports")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
    files = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert files == ["20240517T120000Z.png", "20240517T120000Z.svg"]
    png = (tmp_path / "reports" / "20240517T120000Z.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    svg = (tmp_path / "reports" / "20240517T120000Z.svg").read_text()
    assert "SIMULATED" in svg and "***" in svg


async def test_read_only_sends_nothing(make_app):
    fake = FakeSupervisor(read_only=True)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        for key in ("p", "P", "r", "g", "a"):
            label = footer_label(app, key)
            assert label is not None and label[1] is False, key  # shown, greyed out
        await pilot.press("p", "P", "r", "g", "a")
        assert not isinstance(app.screen, ConfirmScreen)
        assert fake.commands == []
        assert log_text(app).count("read-only: ") == 5
        assert "READ-ONLY" in app.dashboard.status_bar.render().plain
        # Reading still works: detail and help open.
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("enter")
        assert isinstance(app.screen, ShardDetailScreen)


async def test_quit_driving_engine_confirms_then_waits_for_clean_stop(fake, make_app):
    app = make_app(fake, drives_engine=True)
    async with app.run_test(size=SIZE) as pilot:
        assert footer_label(app, "q") == ("Quit", True)
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert fake.commands == [] and app.is_running
        await pilot.press("q")
        await pilot.click("#confirm")
        assert fake.commands == [("stop",)]
        fake.update(engine_state="stopping")
        await refresh(pilot)
        assert app.is_running  # still waiting for the engine
        fake.update(engine_state="stopped", stop_reason="operator stop")
        await refresh(pilot)
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def test_quit_attached_detaches_at_once(fake, make_app):
    app = make_app(fake, drives_engine=False)
    async with app.run_test(size=SIZE) as pilot:
        assert footer_label(app, "q") == ("Detach", True)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
    assert fake.commands == []
    assert app.return_code == 0


async def test_a_run_that_ends_by_itself_stays_on_screen_until_q(fake, make_app):
    app = make_app(fake, refresh_hz=50)  # the timer path, not a manual refresh
    async with app.run_test(size=SIZE) as pilot:
        fake.update(engine_state="failed", exit_code=2, stop_reason="gates failed")
        await wait_for(pilot, lambda: any("gates failed" in str(n.message) for n in app._notifications))
        assert app.is_running
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 2


async def test_exit_on_terminal_ends_the_app_with_the_engine_code(fake, make_app):
    app = make_app(fake, refresh_hz=50, exit_on_terminal=True)
    async with app.run_test(size=SIZE) as pilot:
        fake.update(engine_state="failed", exit_code=2, stop_reason="gates failed")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 2


async def test_help_lists_every_binding(fake, make_app):
    from console.app import BackfillApp
    from console.screens.help import HELP_ROWS

    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {k for k, _ in HELP_ROWS}
        for binding in BackfillApp.BINDINGS:
            key = binding.key.replace("question_mark", "?")
            if binding.show:
                assert key in keys, key
        assert {"enter", "esc"} <= keys
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
