"""CPU seconds of what the product does whatever the number of logs, on a store the job filled.

    .venv/bin/python bench/peers/run.py --tools ours --profiles clean --keep   # prints the workdir
    .venv/bin/python bench/peers/fixed_cpu.py <workdir>/data

In a fresh process: the engine's imports (as ours_job.py does them), opening the embedded store
with its schema, and the closing relaxed gates over what is stored (chDB runs them on every
core, so their CPU can exceed their wall time). Next to cryo's wall time on two cores, this is
the CPU budget argument of bench/RESULTS.md §1c. Figures only.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


C0 = cpu_s()
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
importlib.import_module("ours_job")  # the engine's imports, as the timed process does them

C1 = cpu_s()

import asyncio  # noqa: E402

from console.engine.gates import run_gates  # noqa: E402
from console.engine.store import Store  # noqa: E402
from console.settings import load_settings  # noqa: E402


async def measure(data_dir: Path) -> tuple[float, float, list]:
    c0 = cpu_s()
    store = await Store.open(f"chdb://{data_dir / 'clickhouse'}")  # schema: every CREATE … IF NOT EXISTS
    try:
        c1 = cpu_s()
        settings = load_settings({"data_dir": str(data_dir)})
        results = await run_gates(store, settings.profile(), settings.gates, "relaxed")
        return c1 - c0, cpu_s() - c1, results
    finally:
        await store.close()


def main() -> None:
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "clickhouse").is_dir():
        print(f"usage: {sys.argv[0]} DATA_DIR  (a data dir our engine filled, with clickhouse/ in it)",
              file=sys.stderr)
        sys.exit(2)
    store_s, gates_s, results = asyncio.run(measure(Path(sys.argv[1])))
    verdicts = ", ".join(f"{r.name} {'ok' if r.passed else 'FAILED'}" for r in results)
    print(f"imports {C1 - C0:.2f} CPU-s · store open + schema {store_s:.2f} · closing relaxed gates "
          f"{gates_s:.2f} ({verdicts}) · sum {C1 - C0 + store_s + gates_s:.2f} CPU-s")


if __name__ == "__main__":
    main()
