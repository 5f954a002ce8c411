"""RPC pane: request rate, latency, errors by class (with a sparkline), learned limits."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from console.engine.events import RpcSnapshot, Snapshot
from console.widgets._format import DIM, GREEN, RED, YELLOW, si
from console.widgets.snapshot_view import SnapshotView

ERROR_CLASSES = ("too_large", "rate_limited", "transient", "fatal")
_CLASS_COLOUR = {"too_large": YELLOW, "rate_limited": YELLOW, "transient": YELLOW, "fatal": RED}


def rpc_table(rpc: RpcSnapshot) -> Table:
    t = Table.grid(padding=(0, 1))
    t.add_column(style=DIM, no_wrap=True, min_width=7)
    t.add_column(overflow="fold", ratio=1)
    health = Text("✔ healthy", style=GREEN) if rpc.healthy else Text("✘ unhealthy", style=f"bold {RED}")
    t.add_row("url", Text.assemble(health, "  ", (rpc.url, DIM)))
    t.add_row(
        "rate",
        f"{rpc.requests_per_s:.1f} req/s · {rpc.latency_ms:.0f} ms · "
        f"{si(rpc.calls_total)} calls ({si(rpc.getlogs_calls)} getLogs)",
    )
    ceiling = "unlimited" if rpc.rate_limit_rps is None else f"{rpc.rate_limit_rps:g} req/s"
    limits = " · ".join(
        f"{k} {'?' if v is None else si(v)}" for k, v in sorted(rpc.learned_limits.items())
    )
    t.add_row("ceiling", ceiling)
    t.add_row("limits", limits or "—")
    errs = Text()
    classes = list(ERROR_CLASSES) + sorted(k for k in rpc.errors_by_class if k not in ERROR_CLASSES)
    for i, name in enumerate(classes):
        n = rpc.errors_by_class.get(name, 0)
        if i:
            errs.append(" · ", style=DIM)
        errs.append(f"{name} {n}", style=_CLASS_COLOUR.get(name, YELLOW) if n else "")
    t.add_row("errors", errs)
    return t


class RpcPane(SnapshotView, Vertical):
    """RPC health; the sparkline shows errors per refresh interval, oldest first."""

    min_interval = 1.0  # rates and the sparkline redraw at most once a second

    def urgent_of(self, snapshot: Snapshot) -> Any:
        return (snapshot.rpc.healthy, snapshot.rpc.errors_by_class.get("fatal", 0))

    def compose(self) -> ComposeResult:
        yield Static(id="rpc-text")
        yield Sparkline([], id="rpc-spark")

    def on_mount(self) -> None:
        self.border_title = "RPC"
        self.border_subtitle = "errors/interval"

    def slice_of(self, snapshot: Snapshot) -> Any:
        return snapshot.rpc

    def render_slice(self, snapshot: Snapshot, part: Any) -> None:
        rpc: RpcSnapshot = part
        # The error line may wrap to a second line at narrow widths: its length is the shape.
        shape = (len(rpc.url), sum(len(str(v)) for v in rpc.errors_by_class.values()),
                 len(rpc.learned_limits), rpc.rate_limit_rps is None)
        self.query_one("#rpc-text", Static).update(rpc_table(rpc), layout=self.needs_layout(shape))
        spark = self.query_one("#rpc-spark", Sparkline)
        history = list(rpc.error_history) or [0]
        if list(spark.data or []) != history:
            spark.data = history
