"""Screenshot reports: SVG from Textual, PNG through resvg-py.

* `save_report(source, reports_dir)` writes `<reports_dir>/<UTC yyyymmddThhmmssZ>.svg` and
  `.png`; `source` is a running `BackfillApp` (its current screen), a `SupervisorAPI`, or a
  bare `Snapshot` (rendered headlessly).
* `render_snapshot(supervisor, out, size)` renders the dashboard headlessly to `out`
  (`.svg` or `.png`) — `backfill-console screenshot` and headless `--report-every`.

Both are synchronous. Called from inside a running event loop, the headless render runs on
a helper thread (it starts its own loop); a headless engine should rather call
`await asyncio.to_thread(render_snapshot, ...)` so its loop never waits.

Secrets never appear: the snapshot already carries redacted URLs and DSNs and nothing else
is added.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from console.engine.events import Snapshot, SupervisorAPI

if TYPE_CHECKING:
    from console.app import BackfillApp

DEFAULT_SIZE = (160, 48)
_MONO_CANDIDATES = ("DejaVu Sans Mono", "Liberation Mono", "Noto Sans Mono", "Fira Code")


def report_paths(reports_dir: Path, now: dt.datetime | None = None) -> tuple[Path, Path]:
    """`<reports_dir>/<UTC stamp>.svg/.png`, created dir, never overwriting an earlier report."""
    now = now or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is not None:
        now = now.astimezone(dt.timezone.utc)
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    base, n = stamp, 1
    while (reports_dir / f"{base}.svg").exists() or (reports_dir / f"{base}.png").exists():
        base = f"{stamp}-{n}"
        n += 1
    return reports_dir / f"{base}.svg", reports_dir / f"{base}.png"


_mono_family: str | None | bool = False


def _monospace_family() -> str | None:
    """A monospace font that is actually installed (Textual's SVG asks for Fira Code)."""
    global _mono_family
    if _mono_family is False:
        _mono_family = None
        if shutil.which("fc-list"):
            try:
                out = subprocess.run(
                    ["fc-list", ":spacing=mono", "family"], capture_output=True, text=True, timeout=5
                ).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            for cand in _MONO_CANDIDATES:
                if cand in out:
                    _mono_family = cand
                    break
    return _mono_family or None  # type: ignore[return-value]


def svg_to_png_bytes(svg: str) -> bytes:
    import resvg_py

    # No installed monospace font has U+23F8 (⏸); draw the PNG with a look-alike.
    svg = svg.replace("\u23f8", "\u2016")
    mono = _monospace_family()
    style = f"text {{ font-family: '{mono}', monospace; }}" if mono else None
    data: Any = resvg_py.svg_to_bytes(
        svg_string=svg, monospace_family=mono, font_family=mono, style_sheet=style, zoom=1.0,
    )
    if isinstance(data, str):  # very old resvg_py returned base64 text
        import base64

        data = base64.b64decode(data)
    return bytes(data)


def write_png(svg: str, png_path: Path) -> Path:
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(svg_to_png_bytes(svg))
    return png_path


def _write(svg: str, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        return write_png(svg, out)
    out.write_text(svg, encoding="utf-8")
    return out


class _StaticSupervisor:
    """A read-only supervisor over one fixed snapshot (reports from a bare Snapshot)."""

    live = False  # a picture, not a run: the console announces no "run ended" over it

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self.read_only = snapshot.read_only

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def _noop(self, *args: object) -> None:
        return None

    pause_shard = resume_shard = restart_shard = _noop
    pause_all = resume_all = run_gates = abort = stop = _noop


async def render_svg_async(
    supervisor: SupervisorAPI,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    clock: Callable[[], dt.datetime] | None = None,
) -> str:
    """Run the dashboard headlessly over `supervisor` and return its SVG."""
    from console.app import BackfillApp

    app = BackfillApp(supervisor, drives_engine=False, exit_on_terminal=False, clock=clock)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        return app.export_screenshot(title=app.TITLE)


def screen_text(app: "BackfillApp") -> str:
    """The current screen as plain text (what a golden test or a log line can diff)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def _run_sync(coro_factory: Callable[[], Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="report") as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


def render_snapshot(
    supervisor: SupervisorAPI | Snapshot,
    out: Path,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    clock: Callable[[], dt.datetime] | None = None,
) -> Path:
    """Render the dashboard headlessly to `out` (.svg or .png); returns `out`."""
    sup = _StaticSupervisor(supervisor) if isinstance(supervisor, Snapshot) else supervisor
    svg = _run_sync(lambda: render_svg_async(sup, size, clock=clock))
    return _write(svg, Path(out))


def save_report(
    source: "BackfillApp | SupervisorAPI | Snapshot",
    reports_dir: Path,
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    now: dt.datetime | None = None,
) -> tuple[Path, Path]:
    """Write `<reports_dir>/<UTC>.svg` and `.png`; returns (svg_path, png_path).

    A running `BackfillApp` is captured as it is on screen; a supervisor or snapshot is
    rendered headlessly at `size`.
    """
    from console.app import BackfillApp

    if isinstance(source, BackfillApp):
        svg = source.export_screenshot(title=source.TITLE)
        now = now or source.clock()
    else:
        sup = _StaticSupervisor(source) if isinstance(source, Snapshot) else source
        svg = _run_sync(lambda: render_svg_async(sup, size))
    svg_path, png_path = report_paths(reports_dir, now)
    svg_path.write_text(svg, encoding="utf-8")
    write_png(svg, png_path)
    return svg_path, png_path
