"""Gates pane: each gate's last value against its threshold, PASS/FAIL, and when."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from console.engine.events import GateResult, Snapshot
from console.widgets._format import DIM, GREEN, RED, ago, truncate
from console.widgets.snapshot_view import SnapshotView


def _num(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:.4g}"


def gates_table(gates: tuple[GateResult, ...], now: Any) -> Table | Text:
    if not gates:
        return Text("no gate run yet — press g to run the gates now", style=DIM)
    t = Table.grid(padding=(0, 1), expand=True)
    t.add_column(no_wrap=True, min_width=6)  # verdict
    t.add_column(overflow="ellipsis", no_wrap=True, ratio=1, min_width=8)  # name (+ failing detail, one line)
    t.add_column(no_wrap=True, justify="right")  # value op threshold
    for g in gates:
        verdict = Text("✔ PASS", style=f"bold {GREEN}") if g.passed else Text("✘ FAIL", style=f"bold {RED}")
        name = Text(g.name)
        if g.mode:
            name.append(f" {g.mode}", style=DIM)
        if g.detail and not g.passed:
            name.append(f"\n{truncate(g.detail, 60)}", style=DIM)
        t.add_row(verdict, name, f"{_num(g.value)} {g.comparator} {_num(g.threshold)}")
    return t


class GatesPane(SnapshotView, Static):
    def on_mount(self) -> None:
        self.border_title = "Gates"

    def slice_of(self, snapshot: Snapshot) -> Any:
        # `ago` depends on the snapshot time; round it so the pane redraws at most every 10 s.
        tick = int(snapshot.taken_at.timestamp() // 10) if snapshot.gates else 0
        return (snapshot.gates, tick)

    def render_slice(self, snapshot: Snapshot, part: Any) -> None:
        gates, _ = part
        passed = sum(g.passed for g in gates)
        if gates:
            last = max(g.at for g in gates)
            self.border_subtitle = f"{passed}/{len(gates)} pass · ran {ago(last, snapshot.taken_at)}"
        else:
            self.border_subtitle = ""
        shape = tuple(bool(g.detail and not g.passed) for g in gates)
        self.update(gates_table(gates, snapshot.taken_at), layout=self.needs_layout(shape))
