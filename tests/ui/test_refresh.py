"""Refresh discipline: cursor stays on its shard, hidden panes and modals draw nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt

from console.screens import DashboardScreen, HelpScreen, ShardDetailScreen
from console.widgets import GatesPane, RebuildPane, RpcPane, ShardTable
from console.widgets.days_table import DaysTable
from tests.ui.conftest import refresh, wait_for

SIZE = (160, 48)


def tick(fake, n: int) -> None:
    """Move the world: heartbeat ages, rates and the rpc picture change every tick."""
    snap = fake.current
    shards = tuple(
        dataclasses.replace(s, heartbeat_age_s=s.heartbeat_age_s + 1, logs_per_s=s.logs_per_s + 100 * n)
        for s in snap.shards
    )
    rpc = dataclasses.replace(snap.rpc, requests_per_s=snap.rpc.requests_per_s + n,
                              error_history=snap.rpc.error_history[1:] + (n % 3,))
    gates = tuple(dataclasses.replace(g, value=g.value + n) for g in snap.gates)
    fake.update(shards=shards, rpc=rpc, gates=gates, taken_at=snap.taken_at + dt.timedelta(seconds=1))


async def test_selection_stays_on_the_same_shard(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ShardTable)
        await pilot.press("down", "down", "down")
        assert table.selected_shard_id == 3
        for n in range(5):
            tick(fake, n)
            fake.update_shard(3, state=("running", "stalled")[n % 2])
            await refresh(pilot)
            assert table.selected_shard_id == 3
            assert table.cursor_row == 3
        assert table.row_count == 8
        assert table.cell_updates > 0  # updated in place
        # The footer's Pause label follows the shard under the cursor.
        fake.update_shard(3, state="paused")
        await refresh(pilot)
        assert app.screen.active_bindings["p"].binding.description == "Resume"
        await pilot.press("down")  # shard 4, running
        assert app.screen.active_bindings["p"].binding.description == "Pause"
        await pilot.press("up", "up")  # shard 2, paused in the fake world
        assert app.screen.active_bindings["p"].binding.description == "Resume"


async def test_hidden_pane_is_not_refreshed(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        gates = app.screen.query_one(GatesPane)
        shards = app.screen.query_one(ShardTable)
        gates.display = False
        await pilot.pause()
        g0, s0 = gates.updates, shards.updates
        for n in range(1, 4):
            tick(fake, n)
            await refresh(pilot)
        assert shards.updates == s0 + 3
        assert gates.updates == g0
        gates.display = True
        await refresh(pilot)
        assert gates.updates == g0 + 1  # catches up once shown


async def test_busy_panes_redraw_at_most_once_a_second_unless_urgent(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        rpc = app.screen.query_one(RpcPane)
        r0 = rpc.updates
        snap = fake.current
        for k in range(1, 4):  # three changes within one second of snapshot time
            fake.update(rpc=dataclasses.replace(snap.rpc, requests_per_s=50 + k),
                        taken_at=snap.taken_at + dt.timedelta(seconds=0.25 * k))
            await refresh(pilot)
        assert rpc.updates == r0
        fake.update(rpc=dataclasses.replace(fake.current.rpc, healthy=False))  # urgent
        await refresh(pilot)
        assert rpc.updates == r0 + 1
        fake.update(rpc=dataclasses.replace(fake.current.rpc, requests_per_s=1.0),
                    taken_at=fake.current.taken_at + dt.timedelta(seconds=1))
        await refresh(pilot)
        assert rpc.updates == r0 + 2


async def test_unchanged_snapshot_draws_nothing(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        panes = screen.panes + [screen.status_bar]
        before = [p.updates for p in panes]
        for _ in range(3):
            await refresh(pilot)
        assert [p.updates for p in panes] == before


async def test_nothing_drawn_under_a_modal(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        dash = app.screen
        assert isinstance(dash, DashboardScreen)
        rpc = dash.query_one(RpcPane)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        r0 = rpc.updates
        for n in range(1, 4):
            tick(fake, n)
            await refresh(pilot)
        assert rpc.updates == r0
        await pilot.press("escape")
        await wait_for(pilot, lambda: rpc.updates == r0 + 1)  # catches up on resume


async def test_detail_screen_shows_that_shards_days(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("down", "down", "down", "down", "down", "down", "down")  # shard 7
        await pilot.press("enter")
        assert isinstance(app.screen, ShardDetailScreen)
        assert app.screen.shard_id == 7
        days = app.screen.query_one(DaysTable)
        assert days.row_count == len([d for d in fake.current.days if d.shard_id == 7]) == 131
        assert days.get_cell("7", "day").startswith("2021-06-08")
        errors = app.screen.query_one("#detail-errors").render()
        assert "hash mismatch" in str(errors)
        # The dashboard is hidden: it is not fed while the detail is up.
        rpc = app.dashboard.query_one(RpcPane)
        r0 = rpc.updates
        tick(fake, 1)
        await refresh(pilot)
        assert rpc.updates == r0
        # p acts on the detail's shard.
        await pilot.press("p")
        assert fake.commands == [("pause_shard", 7)]
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen.query_one(ShardTable).selected_shard_id == 7
        await wait_for(pilot, lambda: rpc.updates == r0 + 1)


async def test_event_log_appends_only_new_events(fake, make_app):
    from console.engine.events import EventRecord
    from tests.ui.fake_supervisor import T0

    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        log = app.dashboard.event_log
        n0 = log.lines_written
        assert n0 == len(fake.current.events)
        ev = EventRecord(T0, "warn", "shard-1", "retrying day 377 (transient)")
        later = fake.current.taken_at + dt.timedelta(seconds=0.5)
        fake.update(events=fake.current.events[1:] + (ev,), taken_at=later)  # window slides
        await refresh(pilot)
        assert log.lines_written == n0  # batched: at most one append per second
        fake.update(taken_at=later + dt.timedelta(seconds=1))
        await refresh(pilot)
        await refresh(pilot)
        assert log.lines_written == n0 + 1
        err = EventRecord(T0, "error", "shard-4", "fatal: schema mismatch")
        fake.update(events=fake.current.events[1:] + (err,))
        await refresh(pilot)
        assert log.lines_written == n0 + 2  # errors show at once


async def test_small_terminal_stacks_and_works(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.has_class("-narrow")
        table = screen.query_one(ShardTable)
        assert table.region.width <= 80 and table.row_count == 8
        rpc, gates, rebuild = (screen.query_one(t) for t in (RpcPane, GatesPane, RebuildPane))
        assert rpc.region.x == gates.region.x == rebuild.region.x  # stacked
        await pilot.press("p")
        assert fake.commands == [("pause_shard", 0)]
    app = make_app(fake)
    async with app.run_test(size=(240, 70)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.has_class("-wide")
        rpc, gates = screen.query_one(RpcPane), screen.query_one(GatesPane)
        assert rpc.region.y == gates.region.y and rpc.region.x < gates.region.x  # side by side


async def test_mouse_selects_and_double_click_opens_detail(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ShardTable)
        await pilot.click(ShardTable, offset=(10, 5))  # border, header, rows 0..2, row 3
        assert table.selected_shard_id == 3
        await pilot.click(ShardTable, offset=(10, 5), times=2)
        await wait_for(pilot, lambda: isinstance(app.screen, ShardDetailScreen))
        assert app.screen.shard_id == 3
