"""Golden screenshots of the dashboard with deterministic content and a frozen clock.

Regenerate with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/ui/test_golden.py`, then
look at the PNG (tests/ui/golden/*.png is not stored; render it with console.report.write_png)
before committing.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from console.app import BackfillApp
from console.report import screen_text
from tests.ui.fake_supervisor import T0, FakeSupervisor

GOLDEN = Path(__file__).parent / "golden"


def normalise_svg(svg: str) -> str:
    # Rich names CSS classes after a hash of the content ("terminal-123456"); drop it.
    return re.sub(r"terminal-\d+", "terminal", svg)


async def render(size: tuple[int, int]) -> tuple[str, str]:
    app = BackfillApp(FakeSupervisor(), refresh_hz=0.2, clock=lambda: T0, drives_engine=True)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        return app.export_screenshot(title=app.TITLE), screen_text(app)


@pytest.mark.parametrize("size", [(160, 48), (80, 24)], ids=["160x48", "80x24"])
async def test_dashboard_golden(size):
    svg, text = await render(size)
    name = f"dashboard_{size[0]}x{size[1]}"
    svg_path, txt_path = GOLDEN / f"{name}.svg", GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        svg_path.write_text(svg, encoding="utf-8")
        txt_path.write_text(text + "\n", encoding="utf-8")
    want_text = txt_path.read_text(encoding="utf-8").rstrip("\n")
    if text != want_text:
        diff = "\n".join(difflib.unified_diff(want_text.splitlines(), text.splitlines(), "golden", "now", lineterm=""))
        pytest.fail(f"dashboard text differs from {txt_path.name}:\n{diff}")
    assert normalise_svg(svg) == normalise_svg(svg_path.read_text(encoding="utf-8")), (
        f"{svg_path.name}: same text, different styling (colours/attributes)"
    )


async def test_golden_has_the_key_signals():
    _svg, text = await render((160, 48))
    for needle in ("RUNNING", "SIMULATED CHAIN", "⏸ paused", "⚠ stalled", "✘ failed", "✔ done",
                   "↻ restarting", "✘ FAIL", "✔ PASS", "7m00s !!", "3m00s !", "q Quit", "p Pause"):
        assert needle in text, needle
    assert "default:***@" not in text  # the store DSN is not shown at all on the dashboard
