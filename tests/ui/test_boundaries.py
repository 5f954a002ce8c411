"""The engine never imports Textual; the UI only uses console.engine.events."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "console"
UI_FILES = [ROOT / "app.py", ROOT / "report.py", *ROOT.glob("screens/*.py"), *ROOT.glob("widgets/*.py")]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
    return mods


def test_engine_does_not_import_textual():
    engine = sorted((ROOT / "engine").rglob("*.py"))
    assert engine, "console/engine has no python files?"
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[0] in ("textual", "rich"))
        for p in engine
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_ui_uses_only_engine_events():
    offenders = {}
    for p in UI_FILES:
        bad = sorted(m for m in imported_modules(p) if m.startswith("console.engine") and m != "console.engine.events")
        if bad:
            offenders[str(p.relative_to(ROOT))] = bad
    assert offenders == {}


def test_boundary_check_can_fail(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from textual.app import App\nimport console.engine.supervisor\n")
    assert "textual.app" in imported_modules(bad)
    assert "console.engine.supervisor" in imported_modules(bad)
