"""Per-refresh cost of the console with 8 shards and 1048 days (goal < 5 ms).

    .venv/bin/python bench/ui_refresh.py [--iterations 200]

Measures, headlessly at 160x48, with snapshots prepared beforehand (building them is the
engine's cost, not the UI's):

* apply  — `app.poll()`: read the snapshot, diff it per pane, update changed cells/panes;
           this is what runs on the refresh timer.
* frame  — CPU time of apply plus everything Textual then does for it (messages, layout,
           render of dirty regions) until the app is idle again; CPU time, because the
           wall time of "until idle" is dominated by the test pilot's idle detection.

for: every shard changing each tick (worst case), an unchanged snapshot, and the shard
detail screen (131 day rows of 1048).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.app import BackfillApp  # noqa: E402
from console.engine.events import EventRecord  # noqa: E402
from tests.ui.fake_supervisor import T0, FakeSupervisor, make_snapshot  # noqa: E402


def world(n: int):
    """n successive snapshots, 4 per second of world time (the default --refresh-hz), where
    every shard, the rpc figures and the event log change on every one."""
    base = make_snapshot(shards=8, days_total=1048)
    snaps = []
    events = base.events
    for i in range(n):
        shards = tuple(
            dataclasses.replace(
                s, heartbeat_age_s=(s.heartbeat_age_s + i) % 400, logs_per_s=s.logs_per_s + 37 * i,
                day_progress=((i + s.shard_id * 7) % 100) / 100,
            )
            for s in base.shards
        )
        rpc = dataclasses.replace(
            base.rpc, requests_per_s=30 + i % 10, latency_ms=100 + i % 50, calls_total=base.rpc.calls_total + i,
            error_history=(base.rpc.error_history + (i % 4,))[-30:],
        )
        events = (events + (EventRecord(T0 + dt.timedelta(seconds=i), "info", "engine", f"tick {i}"),))[-200:]
        days = base.days
        if i % 10 == 0:  # a day completes now and then
            k = (i // 10) % len(days)
            days = days[:k] + (dataclasses.replace(days[k], covered=0.5),) + days[k + 1:]
        snaps.append(dataclasses.replace(
            base, taken_at=T0 + dt.timedelta(seconds=i / 4), shards=shards, rpc=rpc, events=events,
            logs_total=base.logs_total + 1000 * i, logs_per_s=base.logs_per_s + i, days=days,
        ))
    return snaps


def stats(name: str, xs: list[float]) -> str:
    xs_ms = sorted(x * 1000 for x in xs)
    p95 = xs_ms[int(len(xs_ms) * 0.95) - 1]
    return f"{name:<34} mean {statistics.mean(xs_ms):6.3f} ms   p50 {statistics.median(xs_ms):6.3f} ms   p95 {p95:6.3f} ms   max {xs_ms[-1]:6.3f} ms"


async def run(iterations: int) -> int:
    snaps = world(iterations)
    fake = FakeSupervisor([snaps[0]])
    app = BackfillApp(fake, refresh_hz=0.1, clock=lambda: T0)  # timer effectively off; we drive
    results: dict[str, list[float]] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()

        async def measure(label: str, frames: list, with_frame: bool) -> None:
            out = results.setdefault(label, [])
            for snap in frames:
                fake.push(snap)
                if with_frame:
                    t0 = time.process_time()
                    app.poll()
                    await pilot.pause()
                    out.append(time.process_time() - t0)
                else:
                    t0 = time.perf_counter()
                    app.poll()
                    out.append(time.perf_counter() - t0)
                    await pilot.pause()

        await measure("dashboard apply (all changing)", snaps[1:], False)
        await measure("dashboard frame CPU (all changing)", snaps[1:], True)
        await measure("dashboard apply (unchanged)", [snaps[-1]] * iterations, False)
        await measure("dashboard frame CPU (unchanged)", [snaps[-1]] * iterations, True)
        await pilot.press("enter")
        await pilot.pause()
        await measure("detail apply (131/1048 days)", snaps[1:], False)
        await measure("detail frame CPU (131/1048 days)", snaps[1:], True)
    print(f"console refresh bench: 8 shards, 1048 days, {iterations} refreshes, 160x48 headless")
    for label, xs in results.items():
        print(stats(label, xs))
    worst = statistics.mean(results["dashboard apply (all changing)"]) * 1000
    print(f"goal < 5 ms per refresh (apply, worst case): {'OK' if worst < 5 else 'MISSED'} ({worst:.3f} ms)")
    return 0 if worst < 5 else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=200)
    return asyncio.run(run(ap.parse_args().iterations))


if __name__ == "__main__":
    raise SystemExit(main())
