"""The days of one shard (detail screen): status, blocks, coverage, counts, attempts, error.

Keyed by day index and updated cell by cell, like the shard table.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from console.engine.events import DaySnapshot, Snapshot
from console.widgets._format import DAY_GLYPHS, bar, glyph_word, si, truncate
from console.widgets.shard_table import _same
from console.widgets.snapshot_view import SnapshotView

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("idx", "#", 5),
    ("day", "Day", 10),
    ("status", "Status", 10),
    ("blocks", "Blocks", 19),
    ("coverage", "Coverage", 15),
    ("erc20", "ERC20", 6),
    ("erc1155", "ERC1155", 7),
    ("attempts", "Try", 3),
    ("error", "Last error", 40),
)


def day_cells(day: DaySnapshot) -> tuple[Any, ...]:
    blocks = "—" if day.start_block is None else f"{day.start_block}–{day.end_block}"
    return (
        str(day.day_idx),
        day.day.isoformat(),
        glyph_word(day.status.lower(), {k.lower(): v for k, v in DAY_GLYPHS.items()}),
        blocks,
        bar(day.covered, 9),
        si(day.erc20_count),
        si(day.erc1155_count),
        str(day.attempts),
        Text(truncate(day.last_error, 40) or "—", style="#E0566F" if day.last_error else ""),
    )


class DaysTable(SnapshotView, DataTable):
    def __init__(self, shard_id: int, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.shard_id = shard_id
        self._rows: dict[int, DaySnapshot] = {}
        self._cells: dict[int, tuple[Any, ...]] = {}

    def on_mount(self) -> None:
        self.border_title = f"Days of shard #{self.shard_id}"
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def slice_of(self, snapshot: Snapshot) -> Any:
        return tuple(d for d in snapshot.days if d.shard_id == self.shard_id)

    def render_slice(self, snapshot: Snapshot, part: Any) -> None:
        days: tuple[DaySnapshot, ...] = part
        for day in days:
            if self._rows.get(day.day_idx) == day:
                continue
            self._rows[day.day_idx] = day
            cells = day_cells(day)
            old = self._cells.get(day.day_idx)
            if old is None:
                self.add_row(*cells, key=str(day.day_idx))
            else:
                for (col, _l, _w), new, prev in zip(COLUMNS, cells, old):
                    if not _same(new, prev):
                        self.update_cell(str(day.day_idx), col, new)
            self._cells[day.day_idx] = cells
        if self.updates == 1:  # first draw: start on the day the shard is working on
            shard = next((s for s in snapshot.shards if s.shard_id == self.shard_id), None)
            if shard is not None and shard.day_idx in self._rows:
                self.move_cursor(row=self.get_row_index(str(shard.day_idx)), animate=False)
        complete = sum(d.status == "COMPLETE" for d in days)
        self.border_subtitle = f"{complete}/{len(days)} complete"
