"""Event log: engine events from the snapshot plus the operator's own actions, timestamped.

Only events not seen before are appended (the snapshot carries a bounded window of recent
events); the log itself is bounded by `max_lines`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from console.engine.events import EventRecord, Snapshot
from console.widgets._format import BLUE, DIM, LEVEL_STYLES, hms
from console.widgets.snapshot_view import SnapshotView


def event_line(ev: EventRecord) -> Text:
    word, colour = LEVEL_STYLES.get(ev.level, (ev.level.upper()[:5].ljust(5), ""))
    line = Text()
    line.append(hms(ev.at), style=DIM)
    line.append(" ")
    line.append(word, style=f"bold {colour}" if colour else "")
    line.append(" ")
    line.append(f"{ev.source[:8]:<8}", style=f"bold {BLUE}" if ev.source == "operator" else DIM)
    line.append(" ")
    line.append(ev.message, style=colour)
    return line


class EventLog(SnapshotView, RichLog):
    DEFAULT_CSS = """
    EventLog { scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, max_lines: int = 1000, **kwargs: Any) -> None:
        super().__init__(max_lines=max_lines, wrap=False, markup=False, highlight=False, **kwargs)
        self._last: EventRecord | None = None
        self.lines_written = 0

    # New lines make the log taller, which costs a screen relayout: batch them once a second
    # (errors still show at once). Operator lines are written immediately.
    min_interval = 1.0

    def urgent_of(self, snapshot: Snapshot) -> Any:
        return sum(1 for e in snapshot.events[-20:] if e.level == "error")

    def on_mount(self) -> None:
        self.border_title = "Events"

    def slice_of(self, snapshot: Snapshot) -> Any:
        return snapshot.events

    def render_slice(self, snapshot: Snapshot, part: Any) -> None:
        events: tuple[EventRecord, ...] = part
        start = 0
        if self._last is not None:
            for i in range(len(events) - 1, -1, -1):
                if events[i] == self._last:
                    start = i + 1
                    break
            else:
                # The window moved past everything we saw: keep only events newer than it.
                last_at = self._last.at
                start = next((i for i, e in enumerate(events) if _newer(e.at, last_at)), len(events))
        for ev in events[start:]:
            self.add_event(ev)
        if events:
            self._last = events[-1]

    def add_event(self, ev: EventRecord) -> None:
        self.write(event_line(ev))
        self.lines_written += 1

    def operator(self, at: dt.datetime, message: str, level: str = "info") -> None:
        """Log an operator action at once (the engine's own line follows when it acts)."""
        self.add_event(EventRecord(at=at, level=level, source="operator", message=message))


def _newer(a: dt.datetime, b: dt.datetime) -> bool:
    try:
        return a > b
    except TypeError:
        return True
