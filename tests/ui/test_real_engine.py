"""The console's keys against the REAL engine (issue 6, Tests): a real `Supervisor` fetching a
slowed devchain world on its own thread and event loop, the app on the test's loop, driven by
the Pilot. Each test checks what the engine did, not only what the console said.

Waiting is always on a condition with a timeout; a "nothing happens" check (a paused shard
makes no request) is measured against the other shards' requests or the engine's own clock,
over several console refreshes. The frozen-clock golden of the dashboard lives in
test_golden.py (FakeSupervisor); it is not repeated here.
"""

from __future__ import annotations

from typing import Any, Callable

from console.report import screen_text
from console.screens import ConfirmScreen
from console.widgets import GatesPane, ShardTable
from tests.ui.engine_fixtures import (  # noqa: F401 - fixtures
    EngineRun, acked, app_shard, footer_label, log_text, on_screen, run_ended, slow_chain, start_engine,
    until,
)

SIZE = (160, 48)


def _app(make_app, eng: EngineRun, **kw: Any):
    kw.setdefault("refresh_hz", 10)
    kw.setdefault("drives_engine", True)
    return make_app(eng.sup, **kw)


async def _quiet_shard(pilot, eng: EngineRun, sid: int, others: int = 10, timeout: float = 20) -> None:
    """Until shard `sid` has made no request while the other shards made `others` of theirs
    (a request in flight when the pause arrived may still land; the pause holds at the next
    sub-range)."""
    mark = [eng.shard_calls(sid), eng.other_calls(sid)]

    def quiet() -> bool:
        now = eng.shard_calls(sid)
        if now != mark[0]:
            mark[:] = [now, eng.other_calls(sid)]
        return eng.other_calls(sid) - mark[1] >= others

    await until(pilot, quiet, timeout, f"shard {sid} quiet while the others fetch", eng)


async def _engine_seconds(pilot, app, eng: EngineRun, seconds: float, polls: int = 5,
                          also: Callable[[], bool] = lambda: True) -> list:
    """Let `seconds` of engine time pass (snapshot clock), at least `polls` console refreshes,
    and `also()` hold; returns every snapshot the console saw meanwhile."""
    start, polls0 = app.snapshot.taken_at, app.polls
    seen: list = []

    def done() -> bool:
        snap = app.snapshot
        if not seen or seen[-1] is not snap:
            seen.append(snap)
        return ((snap.taken_at - start).total_seconds() >= seconds and app.polls - polls0 >= polls
                and also())

    await until(pilot, done, seconds + 20, f"{seconds} s of engine time", eng)
    return seen


async def test_p_pauses_the_selected_shard_in_the_engine_and_p_again_resumes(start_engine, make_app):
    eng = start_engine()
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ShardTable)
        await until(pilot, lambda: eng.fetching(0), 30, "shard 0 fetching a day", eng)
        assert table.selected_shard_id == 0
        assert footer_label(app, "p") == ("Pause", True)

        await pilot.press("p")
        await acked(pilot, app, "pause shard #0 requested")
        await until(pilot, lambda: getattr(app_shard(app, 0), "state", None) == "paused", 5,
                    "the console's snapshot shows shard 0 paused", eng)
        assert eng.runtime(0).state == "paused"
        assert eng.runtime(1).state != "paused" and eng.runtime(2).state != "paused"
        await pilot.pause()
        assert table.get_cell(0, "state").plain == "⏸ paused"
        assert "⏸ paused" in screen_text(app)
        assert footer_label(app, "p") == ("Resume", True)  # the label flips

        # The shard stops fetching: no request, no block, no day, while the others go on.
        await _quiet_shard(pilot, eng, 0)
        rt = eng.runtime(0)
        calls, getlogs, blocks = eng.shard_calls(0), eng.shard_calls(0, "eth_getLogs"), rt.blocks_done
        shown = app_shard(app, 0)
        progress_cell = table.get_cell(0, "progress").plain
        others = eng.other_calls(0)
        # ... over 2 s of engine time in which the other shards made a dozen requests.
        seen = await _engine_seconds(pilot, app, eng, 2.0, also=lambda: eng.other_calls(0) - others >= 12)
        assert (eng.shard_calls(0), eng.shard_calls(0, "eth_getLogs"), rt.blocks_done) == (calls, getlogs, blocks)
        for snap in seen:
            s0 = next(s for s in snap.shards if s.shard_id == 0)
            assert (s0.state, s0.day_idx, s0.day_progress, s0.days_done) == \
                   ("paused", shown.day_idx, shown.day_progress, shown.days_done)
        assert table.get_cell(0, "progress").plain == progress_cell
        await until(pilot, lambda: "shard 0 paused" in log_text(app), 5, "the engine's own log line", eng)

        await pilot.press("p")  # resume
        await acked(pilot, app, "resume shard #0 requested")
        await until(pilot, lambda: eng.shard_calls(0, "eth_getLogs") > getlogs, 10,
                    "shard 0 fetching again", eng)
        await until(pilot, lambda: getattr(app_shard(app, 0), "state", "paused") != "paused", 5,
                    "the console shows shard 0 no longer paused", eng)
        await pilot.pause()
        assert "paused" not in table.get_cell(0, "state").plain
        assert footer_label(app, "p") == ("Pause", True)


async def test_P_pauses_every_shard_and_P_again_resumes_them(start_engine, make_app):
    eng = start_engine()
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: all(eng.shard_calls(s, "eth_getLogs") for s in range(3)), 30,
                    "every shard fetching", eng)
        assert footer_label(app, "P") == ("Pause all", True)
        await pilot.press("P")
        await acked(pilot, app, "pause all shards requested")
        await until(pilot, lambda: app.snapshot and all(s.state == "paused" for s in app.snapshot.shards), 5,
                    "every shard paused in the console's snapshot", eng)
        await pilot.pause()
        assert footer_label(app, "P") == ("Resume all", True)
        table = app.screen.query_one(ShardTable)
        assert [table.get_cell(s, "state").plain for s in range(3)] == ["⏸ paused"] * 3

        # Quiet: once in-flight requests have landed, the engine's own getLogs count and every
        # shard's requests stand still for 2 s of engine time.
        mark = [eng.all_shard_calls(), app.snapshot.taken_at]

        def settled() -> bool:
            if eng.all_shard_calls() != mark[0]:
                mark[:] = [eng.all_shard_calls(), app.snapshot.taken_at]
            return (app.snapshot.taken_at - mark[1]).total_seconds() >= 1.5

        await until(pilot, settled, 20, "every shard quiet", eng)
        calls, engine_getlogs = eng.all_shard_calls(), app.snapshot.rpc.getlogs_calls
        blocks = [eng.runtime(s).blocks_done for s in range(3)]
        seen = await _engine_seconds(pilot, app, eng, 2.0)
        assert eng.all_shard_calls() == calls
        assert [eng.runtime(s).blocks_done for s in range(3)] == blocks
        assert {snap.rpc.getlogs_calls for snap in seen} == {engine_getlogs}
        assert {snap.days_done for snap in seen} == {seen[0].days_done}

        await pilot.press("P")
        await acked(pilot, app, "resume all shards requested")
        await until(pilot, lambda: app.snapshot.rpc.getlogs_calls > engine_getlogs, 10,
                    "the engine fetching again", eng)
        await until(pilot, lambda: not any(s.state == "paused" for s in app.snapshot.shards), 5,
                    "no shard paused", eng)
        await pilot.pause()
        assert footer_label(app, "P") == ("Pause all", True)


async def _ask_to_abort_while_fetching(pilot, app, eng) -> None:
    await until(pilot, lambda: eng.all_shard_calls() > 0, 30, "the engine fetching", eng)
    await pilot.press("a")
    await on_screen(pilot, app, ConfirmScreen)


async def test_a_then_confirm_aborts_the_run_and_the_console_exits_3(start_engine, make_app):
    eng = start_engine()
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        await _ask_to_abort_while_fetching(pilot, app, eng)
        assert app.focused is not None and app.focused.id == "cancel"  # a stray enter is safe
        await pilot.press("tab", "enter")  # move to "Abort run" and choose it
        await acked(pilot, app, "ABORT requested")
        await until(pilot, lambda: not app.is_running, 30, "the console exits after the engine stops")
    assert app.return_code == 3
    eng.thread.join(30)
    assert eng.code == 3
    assert eng.sup.engine_state == "aborted"
    assert "aborted by the operator" in (eng.sup.stop_reason or "")
    assert sum(d.status == "COMPLETE" for d in eng.sup.days.values()) < eng.settings.days


async def test_a_then_cancel_or_escape_leaves_the_run_going(start_engine, make_app):
    eng = start_engine()
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        await _ask_to_abort_while_fetching(pilot, app, eng)
        await pilot.press("escape")
        await acked(pilot, app, "abort cancelled")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("a")
        await on_screen(pilot, app, ConfirmScreen)
        await pilot.press("enter")  # on the focused Cancel
        await until(pilot, lambda: log_text(app).count("abort cancelled") == 2, 5, "the second cancel acknowledged")
        assert not isinstance(app.screen, ConfirmScreen)
        calls = eng.all_shard_calls()
        await until(pilot, lambda: eng.all_shard_calls() >= calls + 6, 10, "the engine still fetching", eng)
        assert app.is_running and eng.thread.is_alive()
        assert eng.sup.exit_code is None and eng.sup.engine_state == "running"
        assert app.snapshot.engine_state == "running"


async def test_r_then_confirm_restarts_the_shard_with_a_new_epoch(start_engine, make_app):
    eng = start_engine()
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ShardTable)
        await until(pilot, lambda: eng.fetching(1), 30, "shard 1 fetching a day", eng)
        await pilot.press("down")
        assert table.selected_shard_id == 1
        before = {s.shard_id: (s.epoch, s.restarts) for s in app.snapshot.shards}
        epoch, restarts = before[1]
        await pilot.press("r")
        await on_screen(pilot, app, ConfirmScreen)
        await pilot.press("tab", "enter")
        await acked(pilot, app, "restart shard #1 requested")
        await until(pilot, lambda: (app_shard(app, 1).epoch, app_shard(app, 1).restarts) == (epoch + 1, restarts + 1),
                    10, "the console's snapshot shows shard 1 at epoch+1, restarts+1", eng)
        assert (eng.runtime(1).epoch, eng.runtime(1).restarts) == (epoch + 1, restarts + 1)
        # Only that shard: the others keep their epoch.
        assert {s.shard_id: (s.epoch, s.restarts) for s in app.snapshot.shards if s.shard_id != 1} == \
               {k: v for k, v in before.items() if k != 1}
        await pilot.pause()
        assert table.get_cell(1, "re").plain.startswith(f"{restarts + 1}/")
        assert table.selected_shard_id == 1  # the cursor stayed on its shard
        # The restarted worker fetches again, and the engine says so in the event log.
        calls = eng.shard_calls(1)
        await until(pilot, lambda: eng.shard_calls(1) > calls, 10, "shard 1 fetching after the restart", eng)
        await until(pilot, lambda: f"shard 1 restarted (operator restart), epoch {epoch + 1}" in log_text(app),
                    5, "the engine's restart line in the event log", eng)


async def test_g_runs_the_gates_and_the_result_shows_in_the_gates_pane(start_engine, make_app):
    eng = start_engine()
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None and app.snapshot.engine_state == "running", 30,
                    "the engine running", eng)
        pane = app.screen.query_one(GatesPane)
        assert app.snapshot.gates == ()
        assert "no gate run yet" in screen_text(app)
        await pilot.press("g")
        await acked(pilot, app, "gates run requested")
        # The operator's run (not the engine's end-of-run gating: the run is still going).
        await until(pilot, lambda: len(app.snapshot.gates) > 0, 20, "gate results in the snapshot", eng)
        assert app.snapshot.engine_state == "running"
        assert any(e.source == "operator" and e.message == "relaxed gates started" for e in app.snapshot.events)
        await until(pilot, lambda: "pass · ran" in str(pane.border_subtitle), 5, "the gates pane redrawn", eng)
        text = screen_text(app)
        assert "no gate run yet" not in text
        for gate in app.snapshot.gates:
            assert gate.name in text
            assert gate.mode == "relaxed"
        assert ("✔ PASS" in text) or ("✘ FAIL" in text)
        await until(pilot, lambda: "relaxed gates: " in log_text(app), 5, "the gates' verdict in the event log", eng)


# -- engine behaviour the console shows (found as bugs here, since fixed in console/engine) ------
async def test_P_shows_the_engine_paused_in_the_status_bar(start_engine, make_app):
    eng = start_engine()
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: eng.all_shard_calls() > 0, 30, "the engine fetching", eng)
        await pilot.press("P")
        await until(pilot, lambda: app.snapshot and all(s.state == "paused" for s in app.snapshot.shards), 5,
                    "every shard paused", eng)
        await until(pilot, lambda: app.snapshot.engine_state == "paused", 3, "the engine state PAUSED", eng)
        await pilot.pause()
        assert "⏸ PAUSED" in app.dashboard.status_bar.render().plain
        await pilot.press("P")
        await until(pilot, lambda: app.snapshot.engine_state == "running", 3, "the engine state RUNNING", eng)
        await pilot.pause()
        assert "▶ RUNNING" in app.dashboard.status_bar.render().plain


def test_a_shard_that_stopped_fetching_shows_no_logs_per_second(monkeypatch):
    from console.engine import shards

    now = [1000.0]
    monkeypatch.setattr(shards.time, "monotonic", lambda: now[0])
    rt = shards.ShardRuntime(0)
    for _ in range(10):
        rt.add_logs(500)
        now[0] += 0.5
    assert rt.logs_per_s() > 0  # fetching: ~1000 logs/s
    now[0] += 60  # then a minute without a single log (paused, or its days all done)
    assert rt.logs_per_s() == 0.0


async def test_the_rebuilds_strict_gates_show_in_the_gates_pane(start_engine, make_app):
    eng = start_engine(days=3, no_rebuild=False)
    app = _app(make_app, eng)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: run_ended(app), 60, "the run (and its rebuild) ended")
        eng.thread.join(30)
        assert eng.code == 0 and app.snapshot.rebuild[1].state == "done", app.snapshot.stop_reason
        await pilot.pause()
        assert [g.mode for g in app.snapshot.gates].count("strict") >= 1
        assert "no gate run yet" not in screen_text(app)
