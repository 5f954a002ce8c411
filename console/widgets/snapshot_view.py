"""`SnapshotView`: the refresh discipline shared by every dashboard pane.

A pane declares which slice of the `Snapshot` it shows (`slice_of`) and how to draw it
(`render_slice`). `apply_snapshot` draws only when that slice changed since the last draw,
and counts draws in `updates` (tests and the bench read it). The screen decides whether a
pane is visible at all; hidden panes are simply not asked, and catch up when shown again.
"""

from __future__ import annotations

from typing import Any

from console.engine.events import Snapshot
from console.widgets._format import TERMINAL_ENGINE_STATES

_UNSET: Any = object()


class SnapshotView:
    """Mixin for widgets fed from a `Snapshot`; draws only on change."""

    updates: int = 0
    _shown_slice: Any = _UNSET
    # Panes that change on every tick but need not be redrawn at the refresh rate (RPC
    # figures, the event log) set a minimum interval, in snapshot time; `urgent_of` names
    # the part of the slice whose change redraws at once (e.g. health flipping).
    min_interval: float = 0.0
    _drawn_at: Any = None
    _shown_urgent: Any = _UNSET

    def urgent_of(self, snapshot: Snapshot) -> Any:
        return None

    def slice_of(self, snapshot: Snapshot) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def render_slice(self, snapshot: Snapshot, part: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def apply_snapshot(self, snapshot: Snapshot) -> bool:
        """Redraw if this pane's slice changed; True when it drew."""
        part = self.slice_of(snapshot)
        shown = self._shown_slice
        if part is shown or (shown is not _UNSET and part == shown):
            return False
        # The last snapshot of a run never changes again: draw it in full at once.
        if (self.min_interval and self._drawn_at is not None
                and snapshot.engine_state not in TERMINAL_ENGINE_STATES):
            urgent = self.urgent_of(snapshot)
            try:
                age = (snapshot.taken_at - self._drawn_at).total_seconds()
            except TypeError:
                age = self.min_interval
            if urgent == self._shown_urgent and 0 <= age < self.min_interval:
                return False  # changed, but not urgent: draw on a later tick
        self._shown_slice = part
        self._drawn_at = snapshot.taken_at
        self._shown_urgent = self.urgent_of(snapshot)
        self.updates += 1
        self.render_slice(snapshot, part)
        return True

    _shape: Any = _UNSET

    def needs_layout(self, shape: Any) -> bool:
        """True when the drawn content's shape (line count) changed, so the screen must
        relayout; a same-shape redraw only repaints this widget."""
        changed = shape != self._shape
        self._shape = shape
        return changed

    def invalidate(self) -> None:
        """Forget what was drawn, so the next snapshot redraws."""
        self._shown_slice = _UNSET
        self._drawn_at = None
