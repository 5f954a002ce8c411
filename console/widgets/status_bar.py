"""Status bar: engine state, totals, ETA, store and RPC health, SIMULATED CHAIN / READ-ONLY."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from console.engine.events import Snapshot
from console.widgets._format import DIM, ENGINE_GLYPHS, GREEN, RED, YELLOW, duration, si

SEP = "  │  "


def status_items(snapshot: Snapshot, read_only: bool) -> list[Text]:
    """The status bar's items; each stays on one line, lines break only between items."""
    s = snapshot
    glyph, colour = ENGINE_GLYPHS.get(s.engine_state, ("?", ""))
    state = Text(f" {glyph} {s.engine_state.upper()} ", style=f"bold reverse {colour}" if colour else "bold reverse")
    if s.stop_reason and s.engine_state in ("stopping", "stopped", "aborted", "failed"):
        state.append(f" ({s.stop_reason})", style=DIM)
    pct = (s.days_done / s.days_total * 100) if s.days_total else 0.0
    days = Text(f"days {s.days_done}/{s.days_total} ({pct:.0f}%)")
    if s.days_failed:
        days.append(f" ✘{s.days_failed} failed", style=f"bold {RED}")
    items = [
        state,
        days,
        Text(f"logs {s.logs_total:,}"),
        Text(f"{si(s.logs_per_s)} logs/s"),
        Text(f"ETA {duration(s.eta_seconds)}"),
        Text.assemble("store ", ("✔ ok", GREEN) if s.store_healthy else ("✘ DOWN", f"bold {RED}")),
        Text.assemble("RPC ", ("✔ ok", GREEN) if s.rpc.healthy else ("✘ DOWN", f"bold {RED}")),
    ]
    if s.simulated_chain:
        items.append(Text(" SIMULATED CHAIN ", style=f"bold reverse {YELLOW}"))
    if read_only:
        items.append(Text(" READ-ONLY ", style="bold reverse"))
    return items


def layout_items(items: list[Text], width: int) -> Text:
    """Join items with separators, breaking lines between items to fit `width`."""
    out = Text(no_wrap=True, overflow="ellipsis")
    col = 0
    for i, item in enumerate(items):
        if i:
            if width and col + len(SEP) + item.cell_len > width:
                out.append("\n")
                col = 0
            else:
                out.append(SEP, style=DIM)
                col += len(SEP)
        out.append_text(item)
        col += item.cell_len
    return out


def status_text(snapshot: Snapshot, read_only: bool, width: int = 0) -> Text:
    return layout_items(status_items(snapshot, read_only), width)


class StatusBar(Static):
    """One or two lines at the top; wraps at narrow widths."""

    DEFAULT_CSS = """
    StatusBar { height: auto; }
    """

    updates = 0

    def __init__(self, *, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.read_only = read_only
        self._key: Any = None

    def apply_snapshot(self, snapshot: Snapshot) -> bool:
        s = snapshot
        key = (
            s.engine_state, s.stop_reason, s.days_done, s.days_total, s.days_failed, s.logs_total,
            si(s.logs_per_s), duration(s.eta_seconds), s.store_healthy, s.rpc.healthy,
            s.simulated_chain, self.read_only,
        )
        if key == self._key:
            return False
        self._key = key
        self.updates += 1
        width = self.content_region.width or self.size.width
        self._items = status_items(s, self.read_only)
        # Relayout the screen only if the height must change. Compare with the height the bar
        # has, not with the old text's line count: in a real 80-column terminal the bar was laid
        # out one line high before its first snapshot, and the two-line status then never got
        # its second line (store and RPC health were cut off for the whole run).
        lines = layout_items(self._items, width).plain.count("\n") + 1 if width else 0
        self.refresh(layout=lines != self.size.height)
        return True

    _items: list[Text] = []

    def render(self) -> Text:
        return layout_items(self._items, self.content_region.width or self.size.width)

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[override]
        return layout_items(self._items, width).plain.count("\n") + 1
