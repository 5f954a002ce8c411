"""SQL files: schema DDL, gates and rebuild steps. Loaded by name so the SQL stays reviewable."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent


@cache
def load(relative: str) -> str:
    """The text of `console/sql/<relative>`."""
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def statements(text: str) -> list[str]:
    """Split a file into statements on `;` at line ends (our SQL has no `;` inside strings)."""
    out, buf = [], []
    for line in text.splitlines():
        if line.strip().startswith("--") and not buf:
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            buf = []
    tail = "\n".join(buf).strip()
    if tail:
        out.append(tail)
    return out
