"""The peers' own virtualenvs, in a cache dir outside the repository (never committed).

    cryo           pip install cryo                      (the Rust tool's Python wheel)
    ethereum-etl   pip install ethereum-etl, then parsimonious==0.9.0 (its pinned 0.8.x
                   does not import on Python 3.11)

`ensure(tool, cache)` returns the venv's python, or raises PeerUnavailable with the pip output,
so the caller can record "could not be installed: <error>" and go on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEFAULT_CACHE = Path(os.environ.get("BENCH_PEERS_CACHE", "/tmp/bench-peers"))

PACKAGES = {
    "cryo": [["cryo"]],
    "etl": [["ethereum-etl"], ["parsimonious==0.9.0"]],
}
CHECK = {
    "cryo": "import cryo; print(cryo.__version__)",
    "etl": "import importlib.metadata as m, ethereumetl.cli; print(m.version('ethereum-etl'))",
}


class PeerUnavailable(RuntimeError):
    pass


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def version(tool: str, cache: Path = DEFAULT_CACHE) -> str | None:
    py = _python(cache / tool)
    if not py.exists():
        return None
    r = subprocess.run([str(py), "-c", CHECK[tool]], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def ensure(tool: str, cache: Path = DEFAULT_CACHE, python: str | None = None) -> Path:
    """Create (once) the venv for `tool` and install it; return its python."""
    venv = cache / tool
    py = _python(venv)
    if version(tool, cache):
        return py
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / f"{tool}-install.log"
    base = python or ("/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else sys.executable)
    steps = [[base, "-m", "venv", str(venv)]]
    steps += [[str(py), "-m", "pip", "install", "-q", *pkgs] for pkgs in PACKAGES[tool]]
    with open(log, "w") as f:
        for cmd in steps:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-15:]
                raise PeerUnavailable(f"{' '.join(cmd)} failed (exit {r.returncode}):\n" + "\n".join(tail))
    v = version(tool, cache)
    if not v:
        r = subprocess.run([str(py), "-c", CHECK[tool]], capture_output=True, text=True)
        raise PeerUnavailable(f"{tool} installed but does not import:\n{r.stderr.strip()[-1500:]}")
    return py
