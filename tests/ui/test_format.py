"""Formatting: glyph + word for every state, heartbeat thresholds, NO_COLOR."""

from __future__ import annotations

from console.engine.events import ENGINE_STATES, SHARD_STATES
from console.widgets._format import (
    ENGINE_GLYPHS, RED, SHARD_GLYPHS, YELLOW, bar, duration, glyph_word, heartbeat, si,
)


def test_every_state_has_glyph_and_word():
    for state in SHARD_STATES:
        assert state in SHARD_GLYPHS, state
        text = glyph_word(state, SHARD_GLYPHS).plain
        assert text.endswith(state) and text[0] != "?"
    for state in ENGINE_STATES:
        assert state in ENGINE_GLYPHS, state
    assert glyph_word("paused", SHARD_GLYPHS).plain == "⏸ paused"
    assert glyph_word("done", SHARD_GLYPHS).plain == "✔ done"


def test_heartbeat_thresholds_have_colour_and_a_mark():
    assert heartbeat(149, 300).plain == "2m29s" and not str(heartbeat(149, 300).style)
    warn = heartbeat(150, 300)
    assert warn.plain.endswith(" !") and YELLOW in str(warn.style)
    stall = heartbeat(300, 300)
    assert stall.plain.endswith(" !!") and RED in str(stall.style)


def test_numbers():
    assert duration(None) == "—" and duration(45) == "45s" and duration(125) == "2m05s"
    assert duration(3 * 3600 + 240) == "3h04m" and duration(2 * 86400 + 3 * 3600) == "2d03h"
    assert si(950) == "950" and si(12_345) == "12.3k" and si(4_560_000) == "4.56M"
    assert bar(0.5, 4).plain == "██░░ 50%" and bar(1.2, 4).plain == "████ 100%"
    assert bar(float("nan"), 4).plain == "░░░░ 0%"


async def test_no_color_is_respected(monkeypatch):
    from textual.filter import Monochrome, NoColor

    from console.app import BackfillApp
    from tests.ui.fake_supervisor import FakeSupervisor

    monkeypatch.setenv("NO_COLOR", "1")
    app = BackfillApp(FakeSupervisor(), refresh_hz=0.2)
    assert app.no_color
    assert any(isinstance(f, (NoColor, Monochrome)) for f in app._filters)
