"""Rebuild pane: the four PnL rebuild steps with state and duration."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from console.engine.events import RebuildStep, Snapshot
from console.widgets._format import DIM, STEP_GLYPHS, duration, glyph_word, truncate
from console.widgets.snapshot_view import SnapshotView


def rebuild_table(steps: tuple[RebuildStep, ...], now: Any) -> Table | Text:
    if not steps:
        return Text("not started — runs after the backfill passes its gates", style=DIM)
    t = Table.grid(padding=(0, 1), expand=True)
    t.add_column(no_wrap=True, style=DIM, min_width=2)
    t.add_column(overflow="ellipsis", no_wrap=True, ratio=1, min_width=8)  # one line of detail each
    t.add_column(no_wrap=True, min_width=9)
    t.add_column(no_wrap=True, justify="right", min_width=6)
    for step in sorted(steps, key=lambda s: s.index):
        secs = step.seconds
        if secs is None and step.state == "running" and step.started_at is not None:
            try:
                secs = (now - step.started_at).total_seconds()
            except TypeError:
                secs = None
        name = Text(step.name)
        if step.detail:
            name.append(f"\n{truncate(step.detail, 40)}", style=DIM)
        t.add_row(f"{step.index}", name, glyph_word(step.state, STEP_GLYPHS), duration(secs))
    return t


class RebuildPane(SnapshotView, Static):
    def on_mount(self) -> None:
        self.border_title = "Rebuild"

    def slice_of(self, snapshot: Snapshot) -> Any:
        running = any(s.state == "running" for s in snapshot.rebuild)
        tick = int(snapshot.taken_at.timestamp()) if running else 0
        return (snapshot.rebuild, tick)

    def render_slice(self, snapshot: Snapshot, part: Any) -> None:
        steps, _ = part
        done = sum(s.state == "done" for s in steps)
        self.border_subtitle = f"{done}/{len(steps)} done" if steps else ""
        shape = tuple(bool(st.detail) for st in steps)
        self.update(rebuild_table(steps, snapshot.taken_at), layout=self.needs_layout(shape))
