"""The per-shard table: one row per shard, keyed by shard id, redrawn row by row.

A small Line-API widget rather than a `DataTable`: each row is rendered once into a cached
`Strip` and re-rendered only when one of its cells changes, so a refresh where every shard
moves costs a few row renders instead of a whole-table re-render. Rows are never cleared or
rebuilt; the cursor is a shard id, so it stays on the same shard across refreshes.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.engine.events import ShardSnapshot, Snapshot
from console.widgets._format import SHARD_GLYPHS, bar, glyph_word, heartbeat, si, truncate
from console.widgets.snapshot_view import SnapshotView

# (key, label, width); None = the rest of the line (the last error, cut off at 80 columns)
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("shard", "#", 3),
    ("state", "State", 12),
    ("day", "Day", 10),
    ("progress", "Day prog.", 11),
    ("done", "Days", 7),
    ("rate", "Log/s", 5),
    ("hb", "Heartbt", 8),
    ("re", "R/Err", 5),
    ("last_error", "Last error", None),
)
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
PAD = 1  # cells each side of a column


def shard_cells(shard: ShardSnapshot, stall_seconds: float) -> tuple[Text, ...]:
    """The rendered cells of one shard row, in COLUMNS order."""
    re = Text(f"{shard.restarts}/{shard.errors}", style="#E0566F" if shard.errors else "")
    return (
        Text(f"#{shard.shard_id}", style="bold"),
        glyph_word(shard.state, SHARD_GLYPHS),
        Text(shard.day.isoformat() if shard.day else "—"),
        bar(shard.day_progress, 6) if shard.day is not None else Text("—"),
        Text(f"{shard.days_done}/{shard.days_owned}"),
        Text(si(shard.logs_per_s)),
        heartbeat(shard.heartbeat_age_s, stall_seconds),
        re,
        Text(truncate(shard.last_error, 80) or "—"),
    )


def _same(a: Any, b: Any) -> bool:
    """Cell equality that also sees style changes (rich's Text.__eq__ ignores the base style)."""
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style and a.spans == b.spans
    return type(a) is type(b) and a == b


class ShardTable(SnapshotView, ScrollView, can_focus=True):
    """Shard table; `selected_shard_id` is the shard under the cursor."""

    COMPONENT_CLASSES = {
        "shard-table--header", "shard-table--cursor", "shard-table--even", "shard-table--odd",
    }

    DEFAULT_CSS = """
    ShardTable {
        height: auto;
        max-height: 20;
        background: $surface;
        overflow-x: hidden;
    }
    ShardTable > .shard-table--header { text-style: bold; background: $panel; color: $foreground; }
    ShardTable > .shard-table--even { background: $surface; }
    ShardTable > .shard-table--odd { background: $surface-lighten-1; }
    ShardTable > .shard-table--cursor { background: $block-cursor-blurred-background; text-style: bold; }
    ShardTable:focus > .shard-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    """

    BINDINGS = [
        Binding("enter", "select", "Detail", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=False, repaint=False)

    class Highlighted(Message):
        """The cursor moved to another shard."""

        def __init__(self, table: "ShardTable", shard_id: int | None) -> None:
            super().__init__()
            self.table = table
            self.shard_id = shard_id

    class Selected(Message):
        """`enter` (or a click on the selected row) on a shard."""

        def __init__(self, table: "ShardTable", shard_id: int) -> None:
            super().__init__()
            self.table = table
            self.shard_id = shard_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._order: list[int] = []  # shard ids, row order
        self._rows: dict[int, tuple[ShardSnapshot, float]] = {}
        self._cells: dict[int, tuple[Text, ...]] = {}
        self._strips: dict[tuple[int, str, int], Strip] = {}  # (shard, variant, width) -> strip
        self._header: dict[int, Strip] = {}
        self.cell_updates = 0  # cells that changed (bench / tests)
        self.row_renders = 0  # rows rendered into strips (bench / tests)

    def on_mount(self) -> None:
        self.border_title = "Shards"

    # -- data -------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def selected_shard_id(self) -> int | None:
        if not self._order:
            return None
        return self._order[min(max(self.cursor_row, 0), len(self._order) - 1)]

    def get_cell(self, shard_id: int | str, column: str) -> Text:
        return self._cells[int(shard_id)][COLUMN_KEYS.index(column)]

    def select_shard(self, shard_id: int) -> None:
        self.cursor_row = self._order.index(shard_id)

    def slice_of(self, snapshot: Snapshot) -> Any:
        return (snapshot.shards, snapshot.stall_seconds)

    def render_slice(self, snapshot: Snapshot, part: Any) -> None:
        shards, stall = part
        seen: set[int] = set()
        selected = self.selected_shard_id
        changed_rows: list[int] = []
        structure_changed = False
        for shard in shards:
            sid = shard.shard_id
            seen.add(sid)
            if self._rows.get(sid) == (shard, stall):
                continue  # this row did not change
            self._rows[sid] = (shard, stall)
            cells = shard_cells(shard, stall)
            old = self._cells.get(sid)
            if old is None:
                self._order.append(sid)
                structure_changed = True
            else:
                diff = sum(not _same(n, o) for n, o in zip(cells, old))
                if not diff:
                    continue
                self.cell_updates += diff
            self._cells[sid] = cells
            self._drop_strips(sid)
            changed_rows.append(sid)
        for sid in [s for s in self._order if s not in seen]:
            self._order.remove(sid)
            del self._rows[sid], self._cells[sid]
            self._drop_strips(sid)
            structure_changed = True
        if structure_changed:
            if selected in self._order:
                self.cursor_row = self._order.index(selected)  # stay on the same shard
            self.virtual_size = Size(self._min_width(), len(self._order) + 1)
            self.refresh(layout=True)
        else:
            for sid in changed_rows:
                self.refresh_line(self._order.index(sid) + 1 - self.scroll_offset.y)

    def _drop_strips(self, sid: int) -> None:
        for key in [k for k in self._strips if k[0] == sid]:
            del self._strips[key]

    @staticmethod
    def _min_width() -> int:
        return sum((w or 10) + 2 * PAD for _k, _l, w in COLUMNS)

    # -- rendering ---------------------------------------------------------------------------
    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._order) + 1

    def _line(self, cells: list[Text], width: int, style: Style, *, override: bool = False) -> Strip:
        line = Text(no_wrap=True, overflow="crop", end="")
        used = 0
        for (_key, _label, col_width), cell in zip(COLUMNS, cells):
            w = col_width if col_width is not None else max(width - used - 2 * PAD, 0)
            cell = cell.copy()
            cell.truncate(w, overflow="ellipsis", pad=True)
            line.append(" " * PAD)
            line.append_text(cell)
            line.append(" " * PAD)
            used += w + 2 * PAD
        segments = list(line.render(self.app.console))
        # The cursor row's colours win over the cells' (contrast); other rows keep them.
        segments = list(
            Segment.apply_style(segments, post_style=style) if override
            else Segment.apply_style(segments, style)
        )
        self.row_renders += 1
        return Strip(segments).adjust_cell_length(width, style).crop(0, width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width or self.size.width
        if y == 0:
            strip = self._header.get(width)
            if strip is None:
                style = self.get_component_rich_style("shard-table--header")
                strip = self._line([Text(label) for _k, label, _w in COLUMNS], width, style)
                self._header = {width: strip}
            return strip
        index = y - 1 + self.scroll_offset.y
        if not 0 <= index < len(self._order):
            return Strip.blank(width, self.rich_style)
        sid = self._order[index]
        if index == self.cursor_row:
            variant = "cursor-focus" if self.has_focus else "cursor"
            cls = "shard-table--cursor"
        else:
            variant = cls = "shard-table--even" if index % 2 == 0 else "shard-table--odd"
        key = (sid, variant, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._line(
                list(self._cells[sid]), width, self.get_component_rich_style(cls),
                override=variant == "cursor-focus",
            )
            self._strips[key] = strip
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header.clear()

    def _on_focus(self, event: events.Focus) -> None:
        self._repaint_cursor()

    def _on_blur(self, event: events.Blur) -> None:
        self._repaint_cursor()

    def _repaint_cursor(self) -> None:
        if self._order:
            self.refresh_line(self.cursor_row + 1 - self.scroll_offset.y)

    # -- cursor ------------------------------------------------------------------------------
    def validate_cursor_row(self, row: int) -> int:
        return min(max(row, 0), max(len(self._order) - 1, 0))

    def watch_cursor_row(self, old: int, new: int) -> None:
        visible = max(self.scrollable_content_region.height - 1, 1)
        top = self.scroll_offset.y
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + visible:
            self.scroll_to(y=new - visible + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self, self.selected_shard_id))

    def move_cursor(self, *, row: int) -> None:
        self.cursor_row = row

    def action_cursor_up(self) -> None:
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self.cursor_row += 1

    def action_page_up(self) -> None:
        self.cursor_row -= max(self.scrollable_content_region.height - 1, 1)

    def action_page_down(self) -> None:
        self.cursor_row += max(self.scrollable_content_region.height - 1, 1)

    def action_first(self) -> None:
        self.cursor_row = 0

    def action_last(self) -> None:
        self.cursor_row = len(self._order) - 1

    def action_select(self) -> None:
        sid = self.selected_shard_id
        if sid is not None:
            self.post_message(self.Selected(self, sid))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = offset.y - 1 + self.scroll_offset.y
        if 0 <= index < len(self._order):
            if index == self.cursor_row and event.chain >= 2:
                self.action_select()
            self.cursor_row = index
