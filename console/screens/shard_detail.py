"""Shard detail (`enter` on a shard): its days with coverage, and its recent errors. `esc` back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.engine.events import Snapshot
from console.widgets import StatusBar
from console.widgets._format import (
    DIM, RED, SHARD_GLYPHS, YELLOW, bar, glyph_word, heartbeat, hms, si, truncate,
)
from console.widgets.days_table import DaysTable

if TYPE_CHECKING:
    from console.app import BackfillApp

MAX_ERRORS = 8


def summary(snapshot: Snapshot, shard_id: int) -> Text:
    shard = next((s for s in snapshot.shards if s.shard_id == shard_id), None)
    if shard is None:
        return Text(f"shard #{shard_id} is not in the current snapshot", style=DIM)
    sep = ("  ·  ", DIM)
    return Text.assemble(
        (f"Shard #{shard.shard_id}", "bold"), "  ", glyph_word(shard.state, SHARD_GLYPHS), sep,
        f"epoch {shard.epoch}", sep, f"restarts {shard.restarts}", sep, f"errors {shard.errors}", "\n",
        f"day {shard.day.isoformat() if shard.day else '—'} ", bar(shard.day_progress, 8), sep,
        f"days {shard.days_done}/{shard.days_owned}", sep, f"{si(shard.logs_per_s)} logs/s", sep,
        "heartbeat ", heartbeat(shard.heartbeat_age_s, snapshot.stall_seconds),
    )


def recent_errors(snapshot: Snapshot, shard_id: int) -> Text:
    source = f"shard-{shard_id}"
    lines: list[Text] = []
    for ev in reversed(snapshot.events):
        if ev.source == source and ev.level in ("warn", "error"):
            colour = RED if ev.level == "error" else YELLOW
            lines.append(Text.assemble((hms(ev.at), DIM), " ", (ev.level.upper(), f"bold {colour}"), " ", ev.message))
            if len(lines) >= MAX_ERRORS:
                break
    for d in snapshot.days:
        if len(lines) >= MAX_ERRORS:
            break
        if d.shard_id == shard_id and d.last_error:
            lines.append(Text.assemble((f"day {d.day.isoformat()}", DIM), " ", ("✘", RED), f" try {d.attempts}: ", truncate(d.last_error, 100)))
    if not lines:
        return Text("✔ no recent errors", style=DIM)
    return Text("\n").join(lines)


class ShardDetailScreen(Screen[None]):
    BINDINGS = [Binding("escape", "back", "Back")]

    app: "BackfillApp"

    def __init__(self, shard_id: int, read_only: bool = False) -> None:
        super().__init__()
        self.shard_id = shard_id
        self.read_only = read_only
        self._key: Any = None
        self._error_lines = -1
        self.updates = 0

    @property
    def selected_shard_id(self) -> int | None:
        return self.shard_id

    def compose(self) -> ComposeResult:
        yield StatusBar(read_only=self.read_only, id="status")
        yield Static(id="detail-summary")
        yield DaysTable(self.shard_id, id="days")
        yield Static(id="detail-errors")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#detail-errors", Static).border_title = "Recent errors"
        self.query_one(DaysTable).focus()
        if self.app.snapshot is not None:
            self.apply_snapshot(self.app.snapshot)

    def on_screen_resume(self) -> None:
        if self.app.snapshot is not None:
            self.apply_snapshot(self.app.snapshot)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        if not self.is_current:
            return
        self.query_one(StatusBar).apply_snapshot(snapshot)
        shard = next((s for s in snapshot.shards if s.shard_id == self.shard_id), None)
        events = tuple(e for e in snapshot.events if e.source == f"shard-{self.shard_id}")
        day_errors = tuple(
            (d.day_idx, d.attempts, d.last_error)
            for d in snapshot.days if d.shard_id == self.shard_id and d.last_error
        )
        key = (shard, events, day_errors, snapshot.stall_seconds)
        if key != self._key:
            old_state = self._key[0].state if self._key and self._key[0] else None
            self._key = key
            self.updates += 1
            errors = recent_errors(snapshot, self.shard_id)
            n_lines = errors.plain.count("\n")
            self.query_one("#detail-summary", Static).update(summary(snapshot, self.shard_id), layout=False)
            self.query_one("#detail-errors", Static).update(errors, layout=n_lines != self._error_lines)
            self._error_lines = n_lines
            if (shard.state if shard else None) != old_state:
                self.app.refresh_bindings()  # Pause/Resume label follows this shard
        self.query_one(DaysTable).apply_snapshot(snapshot)

    def action_back(self) -> None:
        self.app.pop_screen()
