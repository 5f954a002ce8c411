"""Where the memory goes after a backfill: the closing relaxed gates and the rebuild, statement by
statement, on a store that bench/scale.py filled and kept.

    .venv/bin/python bench/scale.py --data-dir /tmp/full --no-rebuild    # once, ~17 min
    .venv/bin/python bench/memory.py /tmp/full                           # ~5 min
    .venv/bin/python bench/memory.py /tmp/full --no-rebuild --top 10

A fresh process opens the store (so the base is chDB's code and an idle engine, ~0.35 GB, not
a backfill's leftovers: bench/scale.py measures those), then runs the relaxed gates as the engine
does at the end of a backfill, then the rebuild. RSS is sampled every 20 ms; each store call
records its peak above the RSS it started from. Prints the peak per phase and the heaviest
statements. Figures, never assertions. The rebuild rewrites the store's derived tables (as
`backfill-console rebuild` would), nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.engine.gates import compact_sources, run_gates  # noqa: E402
from console.engine.rebuild import rebuild  # noqa: E402
from console.engine.store import Store  # noqa: E402
from console.protocol import DEFAULT_PROFILE  # noqa: E402
from console.settings import GateThresholds  # noqa: E402

PAGE_MB = 4096 / (1 << 20)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_MB


class Peaks(threading.Thread):
    """The highest RSS per phase, and since the last `mark()`."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="rss-peaks")
        self.phase = "open"
        self.by_phase: dict[str, float] = {}
        self.since_mark = 0.0

    def enter(self, phase: str) -> None:
        """Start a phase at the RSS of now (a phase shorter than one 20 ms sample has a peak too)."""
        self.by_phase[phase] = max(self.by_phase.get(phase, 0.0), rss_mb())
        self.phase = phase

    def mark(self) -> float:
        now = rss_mb()
        self.since_mark = now
        return now

    def run(self) -> None:
        while True:
            now = rss_mb()
            self.by_phase[self.phase] = max(self.by_phase.get(self.phase, 0.0), now)
            self.since_mark = max(self.since_mark, now)
            time.sleep(0.02)


def record_statements(store: Store, peaks: Peaks, out: list[tuple[float, float, float, str]]) -> None:
    """Wrap the store's command and query: (MB above the start, start MB, seconds, SQL) each."""
    for name in ("command", "query"):
        real = getattr(store, name)

        async def wrapped(sql, *args, _real=real, **kwargs):
            start = peaks.mark()
            t0 = time.perf_counter()
            try:
                return await _real(sql, *args, **kwargs)
            finally:
                out.append((peaks.since_mark - start, start, time.perf_counter() - t0,
                            " ".join(sql.split())[:100]))

        setattr(store, name, wrapped)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path, help="a data dir bench/scale.py --data-dir kept")
    ap.add_argument("--database", default="backfill")
    ap.add_argument("--no-rebuild", action="store_true")
    ap.add_argument("--top", type=int, default=15, help="how many of the heaviest statements to print")
    a = ap.parse_args()
    if not (a.data_dir / "clickhouse").is_dir():
        ap.error(f"{a.data_dir}/clickhouse: no store there (run bench/scale.py --data-dir {a.data_dir})")

    peaks = Peaks()
    peaks.start()
    t0 = time.perf_counter()
    store = await Store.open(f"chdb://{a.data_dir / 'clickhouse'}", a.database, apply_schema=False)
    print(f"open            {time.perf_counter() - t0:6.1f} s   RSS {rss_mb():6.0f} MB", flush=True)
    statements: list[tuple[float, float, float, str]] = []
    record_statements(store, peaks, statements)
    thresholds = GateThresholds(win_rate_min=0.0, win_rate_max=1.0)
    try:
        peaks.enter("compaction")
        t0 = time.perf_counter()
        line = await compact_sources(store, DEFAULT_PROFILE)
        print(f"compaction      {time.perf_counter() - t0:6.1f} s   peak {peaks.by_phase[peaks.phase]:6.0f} MB   "
              f"{line or 'nothing to merge'}", flush=True)
        peaks.enter("closing gates")
        t0 = time.perf_counter()
        results = await run_gates(store, DEFAULT_PROFILE, thresholds, "relaxed")
        print(f"closing gates   {time.perf_counter() - t0:6.1f} s   peak {peaks.by_phase[peaks.phase]:6.0f} MB   "
              + " ".join(f"{r.name}={'ok' if r.passed else 'FAILED'}" for r in results), flush=True)
        if not a.no_rebuild:
            def on_step(step) -> None:
                if step.state == "running":
                    peaks.enter(f"rebuild {step.index} {step.name}")
                    return
                print(f"rebuild {step.index} {step.name:<16} {step.seconds or 0:6.1f} s   "
                      f"peak {peaks.by_phase.get(peaks.phase, 0):6.0f} MB   {step.state}", flush=True)

            out = await rebuild(store, DEFAULT_PROFILE, thresholds, a.data_dir, run_stats={},
                                on_step=on_step, run_id="bench-memory")
            print(f"rebuild {'ok' if out.ok else 'STOPPED: ' + out.reason[:200]}")
    finally:
        await store.close()
    print(f"whole process   peak {max(peaks.by_phase.values()):6.0f} MB")
    print("\nheaviest statements (MB above the RSS they started from):")
    for above, start, secs, sql in sorted(statements, reverse=True)[:a.top]:
        print(f"  +{above:5.0f} MB from {start:5.0f}  {secs:6.1f} s  {sql}")


if __name__ == "__main__":
    asyncio.run(main())
