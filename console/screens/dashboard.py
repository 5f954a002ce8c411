"""The dashboard: status bar, shard table, RPC / gates / rebuild panes, event log, footer.

Responsive: at 120 columns and more the three small panes sit side by side; below that
everything stacks in one scrolling column (80x24 works). Only the current screen is fed
snapshots, and only displayed panes draw (see `SnapshotView`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer

from console.engine.events import Snapshot
from console.widgets import EventLog, GatesPane, RebuildPane, RpcPane, ShardTable, StatusBar

if TYPE_CHECKING:
    from console.app import BackfillApp


class DashboardScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    app: "BackfillApp"

    def __init__(self, read_only: bool = False) -> None:
        super().__init__(id="dashboard")
        self.read_only = read_only
        self._selected_state: tuple[int | None, str | None] = (None, None)

    def compose(self) -> ComposeResult:
        yield StatusBar(read_only=self.read_only, id="status")
        with VerticalScroll(id="body"):
            yield ShardTable(id="shards")
            with Horizontal(id="panes"):
                yield RpcPane(id="rpc")
                yield GatesPane(id="gates")
                yield RebuildPane(id="rebuild")
            yield EventLog(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.status_bar = self.query_one(StatusBar)
        self.shard_table = self.query_one(ShardTable)
        self.event_log = self.query_one(EventLog)
        self.panes = [
            self.shard_table, self.query_one(RpcPane), self.query_one(GatesPane),
            self.query_one(RebuildPane), self.event_log,
        ]
        self.shard_table.focus()

    # -- refresh ----------------------------------------------------------------------
    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Feed the visible panes; each redraws only if its slice changed."""
        if not self.is_current or not self.is_mounted:
            return
        self.status_bar.apply_snapshot(snapshot)
        for pane in self.panes:
            if pane.display:
                pane.apply_snapshot(snapshot)
        self._check_selected_state(snapshot)

    def _check_selected_state(self, snapshot: Snapshot) -> None:
        sid = self.selected_shard_id
        state = next((s.state for s in snapshot.shards if s.shard_id == sid), None)
        if (sid, state) != self._selected_state:
            self._selected_state = (sid, state)
            self.app.refresh_bindings()  # the footer's Pause/Resume label follows the selection

    def on_screen_resume(self) -> None:
        snap = self.app.snapshot
        if snap is not None:
            self.apply_snapshot(snap)

    # -- selection --------------------------------------------------------------------
    @property
    def selected_shard_id(self) -> int | None:
        return self.shard_table.selected_shard_id if self.is_mounted else None

    def on_shard_table_highlighted(self, event: ShardTable.Highlighted) -> None:
        if self.app.snapshot is not None:
            self._check_selected_state(self.app.snapshot)

    def on_shard_table_selected(self, event: ShardTable.Selected) -> None:
        event.stop()
        self.app.open_detail(event.shard_id)

    def log_operator(self, at, message: str, level: str = "info") -> None:
        self.event_log.operator(at, message, level)
