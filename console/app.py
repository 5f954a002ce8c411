"""The Textual operator console (DESIGN §7).

`BackfillApp` reads `supervisor.snapshot()` on a timer and calls the supervisor's command
methods; nothing else crosses from the engine (see `console.engine.events`). Commands never
block: the supervisor queues them, and the console acknowledges every key at once (a toast
and an event-log line) while the engine acts on it.

Refresh discipline: one snapshot per tick; only the current screen is fed; each pane draws
only when its slice of the snapshot changed; nothing is drawn under a modal or for hidden
panes; the shard table updates cells in place so the cursor stays on its shard.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from textual.app import App
from textual.binding import Binding
from textual.events import Key
from textual.screen import ModalScreen

from console.engine.events import Snapshot, SupervisorAPI
from console.screens import ConfirmScreen, DashboardScreen, HelpScreen, ShardDetailScreen
from console.widgets._format import TERMINAL_ENGINE_STATES

DEFAULT_REPORTS_DIR = Path("data/reports")

# Actions that change the run: disabled (greyed) when read-only.
CONTROL_ACTIONS = frozenset(
    {"pause_shard", "resume_shard", "pause_all", "resume_all", "restart_shard", "gates", "abort"}
)
CONTROL_KEYS = frozenset({"p", "P", "r", "g", "a"})
SHARD_ACTIONS = frozenset({"pause_shard", "resume_shard", "restart_shard"})
ACTIVE_SHARD_STATES = frozenset({"idle", "running", "paused", "stalled", "restarting"})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class BackfillApp(App[int]):
    """The operator console over any `SupervisorAPI` (in-process or attached)."""

    CSS_PATH = "app.tcss"
    TITLE = "backfill-console"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("p", "pause_shard", "Pause"),
        Binding("p", "resume_shard", "Resume"),
        Binding("P", "pause_all", "Pause all"),
        Binding("P", "resume_all", "Resume all"),
        Binding("r", "restart_shard", "Restart"),
        Binding("g", "gates", "Gates"),
        Binding("a", "abort", "Abort"),
        Binding("s", "screenshot", "Shot"),
        Binding("q", "quit_console", "Quit"),
        Binding("q", "detach", "Detach"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit_console", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        supervisor: SupervisorAPI,
        *,
        refresh_hz: float = 4.0,
        reports_dir: Path | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        drives_engine: bool = True,
        exit_on_terminal: bool = False,
    ) -> None:
        super().__init__()
        self.supervisor = supervisor
        self.refresh_hz = max(float(refresh_hz), 0.1)
        self.reports_dir = Path(reports_dir) if reports_dir is not None else DEFAULT_REPORTS_DIR
        self.clock: Callable[[], dt.datetime] = clock or _utcnow
        self.drives_engine = drives_engine
        self.exit_on_terminal = exit_on_terminal
        self.read_only = bool(getattr(supervisor, "read_only", False))
        self.snapshot: Snapshot | None = None
        self.dashboard = DashboardScreen(read_only=self.read_only)
        self.refresh_costs: deque[float] = deque(maxlen=2000)  # seconds per UI refresh
        self.polls = 0
        self._quitting = False
        self._announced_end = False
        self._snapshot_error: str | None = None
        self._pending_log: list[tuple[dt.datetime, str, str]] = []

    # -- lifecycle ----------------------------------------------------------------------
    def get_default_screen(self) -> DashboardScreen:
        return self.dashboard

    def on_ready(self) -> None:
        for at, message, level in self._pending_log:
            self.dashboard.log_operator(at, message, level)
        self._pending_log.clear()
        self.poll()
        self.set_interval(1.0 / self.refresh_hz, self.poll, name="snapshot-poll")

    @property
    def is_remote(self) -> bool:
        """An attached supervisor (commands go through the mirror; `q` never waits)."""
        sup = self.supervisor
        return bool(getattr(sup, "remote", False)) or type(sup).__name__ == "RemoteSupervisor"

    def poll(self) -> None:
        """One refresh: read a snapshot and feed the current screen (unless a modal is up)."""
        try:
            snap = self.supervisor.snapshot()
        except Exception as exc:  # a remote mirror may be busy; keep the last picture
            msg = f"snapshot failed: {type(exc).__name__}: {exc}"
            if msg != self._snapshot_error:
                self._snapshot_error = msg
                self.log_operator(msg, level="error")
            return
        self._snapshot_error = None
        self.snapshot = snap
        self.polls += 1
        if self._check_exit(snap):
            return
        t0 = time.perf_counter()
        self.render_snapshot(snap)
        self.refresh_costs.append(time.perf_counter() - t0)
        # After drawing: the run's last engine events are in the log before the operator's
        # "run ended" line.
        self._announce_end(snap)

    def render_snapshot(self, snap: Snapshot) -> None:
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return  # nothing drawn under a modal; the screen catches up on resume
        apply = getattr(screen, "apply_snapshot", None)
        if apply is not None:
            apply(snap)

    def _check_exit(self, snap: Snapshot) -> bool:
        if snap.engine_state not in TERMINAL_ENGINE_STATES:
            return False
        if self._quitting or (self.exit_on_terminal and snap.exit_code is not None):
            self.exit(result=snap.exit_code or 0, return_code=snap.exit_code or 0)
            return True
        return False

    def _announce_end(self, snap: Snapshot) -> None:
        """A run that ends by itself stays on screen: the operator reads the outcome first.

        Not for a static picture of a finished run (`screenshot`, `status`): nothing ended
        while it was watched, and there is nothing to leave."""
        if self._announced_end or snap.engine_state not in TERMINAL_ENGINE_STATES:
            return
        self._announced_end = True
        self.refresh_bindings()  # the control keys grey out: there is no run left to control
        if not getattr(self.supervisor, "live", True):
            return
        outcome = f": {snap.stop_reason}" if snap.stop_reason else ""
        self.ack(f"run ended ({snap.engine_state}, exit {snap.exit_code}){outcome} — press q to leave",
                 level="info" if not snap.exit_code else "error")

    @property
    def run_ended(self) -> bool:
        snap = self.snapshot
        return snap is not None and snap.engine_state in TERMINAL_ENGINE_STATES

    # -- selection and binding state ----------------------------------------------------
    @property
    def selected_shard_id(self) -> int | None:
        screen = self.screen
        return getattr(screen, "selected_shard_id", None) if not isinstance(screen, ModalScreen) else None

    def _shard_state(self, shard_id: int | None) -> str | None:
        if shard_id is None or self.snapshot is None:
            return None
        return next((s.state for s in self.snapshot.shards if s.shard_id == shard_id), None)

    def _all_paused(self) -> bool:
        if self.snapshot is None:
            return False
        active = [s for s in self.snapshot.shards if s.state in ACTIVE_SHARD_STATES]
        return bool(active) and all(s.state == "paused" for s in active)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "quit_console":
            return self.drives_engine
        if action == "detach":
            return not self.drives_engine
        if action not in CONTROL_ACTIONS:
            return True
        if self.read_only or self.run_ended:
            # Greyed out (None) rather than hidden; show only one of each Pause/Resume pair.
            return False if action in ("resume_shard", "resume_all") else None
        if action in SHARD_ACTIONS:
            sid = self.selected_shard_id
            state = self._shard_state(sid)
            if action == "pause_shard":
                return None if sid is None else state != "paused"
            if action == "resume_shard":
                return state == "paused"
            return None if sid is None else True
        if action == "pause_all":
            return not self._all_paused()
        if action == "resume_all":
            return self._all_paused()
        return True

    def on_key(self, event: Key) -> None:
        """A control key that does nothing (read-only, or the run has ended) still gets an answer."""
        if event.key not in CONTROL_KEYS or isinstance(self.screen, ModalScreen):
            return
        if self.read_only:
            event.stop()
            self.ack(f"read-only: '{event.key}' is disabled (attached read-only)", level="warn")
        elif self.run_ended:
            event.stop()
            self.ack(f"the run has ended: '{event.key}' has nothing to control — press q to leave",
                     level="warn")

    # -- acknowledgement -----------------------------------------------------------------
    def log_operator(self, message: str, level: str = "info") -> None:
        at = self.clock()
        if self.dashboard.is_mounted:
            self.dashboard.log_operator(at, message, level)
        else:
            self._pending_log.append((at, message, level))

    def ack(self, message: str, level: str = "info") -> None:
        """Acknowledge an operator key at once: a toast and an event-log line."""
        severity = {"info": "information", "warn": "warning", "error": "error"}.get(level, "information")
        self.notify(message, severity=severity, timeout=4)  # type: ignore[arg-type]
        self.log_operator(message, level)

    def _command(self, what: str, fn: Callable[..., None], *args: Any) -> bool:
        try:
            fn(*args)
        except Exception as exc:
            self.ack(f"{what} failed: {type(exc).__name__}: {exc}", level="error")
            return False
        return True

    # -- actions ---------------------------------------------------------------------------
    def action_pause_shard(self) -> None:
        sid = self.selected_shard_id
        if sid is not None and self._command("pause", self.supervisor.pause_shard, sid):
            self.ack(f"pause shard #{sid} requested")

    def action_resume_shard(self) -> None:
        sid = self.selected_shard_id
        if sid is not None and self._command("resume", self.supervisor.resume_shard, sid):
            self.ack(f"resume shard #{sid} requested")

    def action_pause_all(self) -> None:
        if self._command("pause all", self.supervisor.pause_all):
            self.ack("pause all shards requested")

    def action_resume_all(self) -> None:
        if self._command("resume all", self.supervisor.resume_all):
            self.ack("resume all shards requested")

    def action_restart_shard(self) -> None:
        sid = self.selected_shard_id
        if sid is None:
            return

        def done(confirmed: bool | None) -> None:
            if confirmed and self.run_ended:
                self.ack(f"restart shard #{sid}: the run has already ended", level="warn")
            elif confirmed:
                if self._command("restart", self.supervisor.restart_shard, sid):
                    self.ack(f"restart shard #{sid} requested")
            else:
                self.ack(f"restart shard #{sid} cancelled")

        self.push_screen(
            ConfirmScreen(
                f"Restart shard #{sid}?",
                "Its worker is cancelled and started again with a new epoch; the day in "
                "flight is re-claimed. Nothing already written is lost.",
                "Restart",
            ),
            done,
        )

    def action_gates(self) -> None:
        if self._command("gates", self.supervisor.run_gates):
            self.ack("gates run requested")

    def action_abort(self) -> None:
        def done(confirmed: bool | None) -> None:
            if confirmed and self.run_ended:
                self.ack("abort: the run has already ended — press q to leave", level="warn")
            elif confirmed:
                if self._command("abort", self.supervisor.abort):
                    self._quitting = True  # leave once the engine has stopped
                    self.ack("ABORT requested — the run stops now (exit 3)", level="warn")
            else:
                self.ack("abort cancelled")

        self.push_screen(
            ConfirmScreen(
                "Abort the run?",
                "All shards stop at once and the run ends with exit code 3. Completed days "
                "stay complete; a later run resumes from the ledger.",
                "Abort run",
            ),
            done,
        )

    def action_screenshot(self) -> None:
        from console.report import report_paths, write_png

        svg = self.export_screenshot(title=self.TITLE)
        svg_path, png_path = report_paths(self.reports_dir, self.clock())
        try:
            svg_path.write_text(svg, encoding="utf-8")
        except OSError as exc:
            self.ack(f"screenshot failed: {exc}", level="error")
            return
        self.ack(f"screenshot saved: {svg_path} (+ .png)")

        def to_png() -> None:
            try:
                write_png(svg, png_path)
            except Exception as exc:  # noqa: BLE001 - report it, never crash the console
                self.call_from_thread(self.ack, f"PNG failed: {exc}", "error")

        self.run_worker(to_png, thread=True, name="screenshot-png", group="reports")

    def action_help(self) -> None:
        self.push_screen(HelpScreen(read_only=self.read_only))

    def action_detach(self) -> None:
        self.ack("detached — the run goes on")
        self.exit(result=0, return_code=0)

    def action_quit_console(self) -> None:
        if not self.drives_engine:
            self.action_detach()
            return
        snap = self.snapshot
        if snap is not None and snap.engine_state in TERMINAL_ENGINE_STATES:
            self.exit(result=snap.exit_code or 0, return_code=snap.exit_code or 0)
            return
        if self._quitting:
            self.ack("already stopping — waiting for the engine to finish cleanly")
            return

        def done(confirmed: bool | None) -> None:
            if not confirmed:
                self.ack("quit cancelled")
                return
            if not self._command("stop", self.supervisor.stop):
                return
            self.ack("stopping cleanly — the run can resume later")
            if self.is_remote:
                self.exit(result=0, return_code=0)
            else:
                self._quitting = True
                if self.snapshot is not None:
                    self._check_exit(self.snapshot)

        self.push_screen(
            ConfirmScreen(
                "Quit and stop the run?",
                "The engine finishes in-flight work, stops cleanly and can resume later "
                "from where it stopped.",
                "Stop and quit",
            ),
            done,
        )

    async def action_quit(self) -> None:  # ctrl+q and friends go through the same door
        self.action_quit_console()

    def open_detail(self, shard_id: int) -> None:
        if isinstance(self.screen, DashboardScreen):
            self.push_screen(ShardDetailScreen(shard_id, read_only=self.read_only))
