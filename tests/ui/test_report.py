"""Screenshot reports: SVG + PNG, headless render for the CLI and --report-every."""

from __future__ import annotations

import asyncio
import datetime as dt

from console.report import render_snapshot, report_paths, save_report
from tests.ui.fake_supervisor import T0, FakeSupervisor, make_snapshot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_paths_are_utc_and_never_overwrite(tmp_path):
    cest = dt.timezone(dt.timedelta(hours=2))
    svg, png = report_paths(tmp_path / "r", T0.astimezone(cest))
    assert (svg.name, png.name) == ("20240517T120000Z.svg", "20240517T120000Z.png")
    svg.write_text("x")
    svg2, png2 = report_paths(tmp_path / "r", T0)
    assert svg2.name == "20240517T120000Z-1.svg" and png2.name == "20240517T120000Z-1.png"


def test_render_snapshot_svg_and_png(tmp_path):
    sup = FakeSupervisor()
    out_svg = render_snapshot(sup, tmp_path / "shot.svg", size=(120, 40))
    text = out_svg.read_text()
    assert text.startswith("<svg") and "SIMULATED" in text
    out_png = render_snapshot(sup, tmp_path / "shot.png", size=(80, 24))
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    assert sup.commands == []  # rendering never commands the engine


def test_render_from_a_terminal_snapshot_does_not_exit_early(tmp_path):
    snap = make_snapshot(engine_state="aborted", exit_code=3, stop_reason="operator abort")
    out = render_snapshot(snap, tmp_path / "done.svg", size=(160, 48))
    assert "ABORTED" in out.read_text()


async def test_render_inside_a_running_loop(tmp_path):
    # A headless engine calls it from its own loop (ideally via asyncio.to_thread).
    out = await asyncio.to_thread(render_snapshot, FakeSupervisor(), tmp_path / "a.png", (100, 30))
    assert out.read_bytes()[:8] == PNG_MAGIC
    out2 = render_snapshot(FakeSupervisor(), tmp_path / "b.svg", (100, 30))  # blocking path
    assert out2.exists()


def test_save_report_from_snapshot(tmp_path):
    svg, png = save_report(make_snapshot(), tmp_path / "reports", size=(100, 30), now=T0)
    assert svg.name == "20240517T120000Z.svg" and png.read_bytes()[:8] == PNG_MAGIC
    body = svg.read_text()
    assert "SIMULATED" in body
    assert "default:" not in body  # nothing beyond the redacted snapshot
