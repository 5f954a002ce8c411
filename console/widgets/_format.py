"""Plain formatting helpers shared by the console widgets (no Textual imports here).

Every state is rendered with a glyph AND a word, so colour is never the only signal
(NO_COLOR terminals and screenshots stay readable).
"""

from __future__ import annotations

import datetime as dt

from rich.text import Text

# Palette close to Textual's default dark theme; NO_COLOR strips it (Monochrome filter).
GREEN = "#4EBF71"
YELLOW = "#FFA62B"
RED = "#E0566F"
BLUE = "#4C9AFF"
DIM = "#8A8F98"

SHARD_GLYPHS: dict[str, tuple[str, str]] = {
    "done": ("✔", GREEN),
    "running": ("▶", BLUE),
    "paused": ("⏸", YELLOW),
    "stalled": ("⚠", YELLOW),
    "restarting": ("↻", YELLOW),
    "failed": ("✘", RED),
    "idle": ("·", DIM),
    "stopped": ("■", DIM),
}

ENGINE_GLYPHS: dict[str, tuple[str, str]] = {
    "starting": ("…", BLUE),
    "running": ("▶", BLUE),
    "paused": ("⏸", YELLOW),
    "stopping": ("■", YELLOW),
    "gating": ("⚖", BLUE),
    "rebuilding": ("⚙", BLUE),
    "waiting": ("…", BLUE),  # own shards done; waiting for other hosts' days in the shared store
    "done": ("✔", GREEN),
    "failed": ("✘", RED),
    "aborted": ("✘", RED),
    "stopped": ("■", DIM),
}

STEP_GLYPHS: dict[str, tuple[str, str]] = {
    "pending": ("·", DIM),
    "running": ("▶", BLUE),
    "done": ("✔", GREEN),
    "failed": ("✘", RED),
    "skipped": ("↷", DIM),
}

DAY_GLYPHS: dict[str, tuple[str, str]] = {
    "PENDING": ("·", DIM),
    "CLAIMED": ("▶", BLUE),
    "COMPLETE": ("✔", GREEN),
    "FAILED": ("✘", RED),
}

LEVEL_STYLES = {"info": ("INFO ", ""), "warn": ("WARN ", YELLOW), "error": ("ERROR", RED)}

TERMINAL_ENGINE_STATES = frozenset({"stopped", "aborted", "done", "failed"})


def glyph_word(state: str, table: dict[str, tuple[str, str]], *, upper: bool = False) -> Text:
    glyph, colour = table.get(state, ("?", ""))
    word = state.upper() if upper else state
    return Text(f"{glyph} {word}", style=colour)


def bar(fraction: float, width: int = 10) -> Text:
    """A text progress bar with a percentage: `█████▌░░░░  55%`."""
    f = 0.0 if fraction != fraction else min(max(fraction, 0.0), 1.0)  # NaN-safe clamp
    eighths = int(round(f * width * 8))
    full, rem = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rem] if rem else ""
    filled = "█" * full + partial
    empty = "░" * (width - len(filled))
    colour = GREEN if f >= 1.0 else BLUE
    text = Text()
    text.append(filled, style=colour)
    text.append(empty, style=DIM)
    text.append(f" {f * 100:.0f}%")
    return text


def si(value: float) -> str:
    """Compact number: 950, 12.3k, 4.56M."""
    v = float(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}" if abs(v) / scale < 100 else f"{v / scale:.0f}{unit}"
    return f"{v:.0f}" if v == int(v) or abs(v) >= 10 else f"{v:.1f}"


def duration(seconds: float | None) -> str:
    """Short duration: 45s, 2m05s, 1h04m, 3d02h; `—` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def heartbeat(age_s: float, stall_seconds: float) -> Text:
    """Heartbeat age: yellow `!` past half the stall threshold, red `!!` past it."""
    label = duration(age_s)
    if stall_seconds > 0 and age_s >= stall_seconds:
        return Text(f"{label} !!", style=f"bold {RED}")
    if stall_seconds > 0 and age_s >= stall_seconds / 2:
        return Text(f"{label} !", style=YELLOW)
    return Text(label)


def coarse(seconds: float | None) -> str:
    """Coarse age: 45s, 12m, 3h04m, 2d03h."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    if 60 <= seconds < 3600:
        return f"{int(seconds // 60)}m"
    return duration(seconds)


def hms(at: dt.datetime | None) -> str:
    if at is None:
        return "—"
    if at.tzinfo is not None:
        at = at.astimezone(dt.timezone.utc)
    return at.strftime("%H:%M:%S")


def ago(at: dt.datetime | None, now: dt.datetime) -> str:
    if at is None:
        return "—"
    try:
        return f"{coarse((now - at).total_seconds())} ago"
    except TypeError:  # naive vs aware
        return hms(at)


def truncate(text: str | None, width: int) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
