"""Help: every key binding of the console, including the ones the footer leaves out."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

# (key, what it does) — kept in one place so the help and the bindings cannot drift apart
# silently: tests check every BackfillApp binding key appears here.
HELP_ROWS: tuple[tuple[str, str], ...] = (
    ("p", "pause / resume the selected shard (label flips)"),
    ("P", "pause / resume all shards"),
    ("r", "restart the selected shard (asks to confirm)"),
    ("g", "re-run the gates now"),
    ("a", "abort the run (asks to confirm; exits 3)"),
    ("s", "save a screenshot report (data/reports/<UTC>.svg + .png)"),
    ("q", "quit: stop the engine cleanly (confirm; the run resumes later) — attached: detach"),
    ("enter", "shard detail: its days, coverage and recent errors"),
    ("esc", "back / cancel a dialog"),
    ("↑ ↓ pgup pgdn", "move the shard selection"),
    ("?", "this help"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, text in HELP_ROWS:
            table.add_row(key, text)
        with Vertical(id="help"):
            yield Label("Keys", id="help-title")
            yield Static(table, id="help-keys")
            note = "READ-ONLY: control keys (p P r g a) are disabled." if self.read_only else ""
            yield Static(note + "\nesc closes", id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
