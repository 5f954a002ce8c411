"""End-to-end ingest figures: devchain (child process) -> engine -> embedded ClickHouse.

Prints logs/s with a breakdown (JSON parse / decode / insert), eth_getLogs calls per stream
against the cap-bound minimum, failed oversize calls, and the engine's peak RSS. Figures, not
assertions: run it before and after a change to the hot path.

  python bench/ingest.py                                  # demo world, clean profile
  python bench/ingest.py --profile alchemy                # calls vs the 10k-log minimum
  python bench/ingest.py --profile clean --latency-ms 100 --rps 25 --density small
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.devchain.faults import get_profile  # noqa: E402
from console.devchain.index import FilterSpec  # noqa: E402
from console.devchain.process import spawn  # noqa: E402
from console.devchain.world import build_world  # noqa: E402
from console.engine.launch import run_engine  # noqa: E402
from console.protocol import DEFAULT_PROFILE  # noqa: E402
from console.settings import load_settings  # noqa: E402


def minimum_calls(world, cap: int | None, range_cap: int | None, scope: str) -> dict[str, int]:
    """max(ceil(logs / cap), ceil(blocks / range_cap)) per (day, stream), at least one call
    each: what no client can beat."""
    out: dict[str, int] = {}
    for d in range(world.days):
        day = world.start_date.fromordinal(world.start_date.toordinal() + d)
        a, b = world.day_bounds(d)
        for s in DEFAULT_PROFILE.streams(day, scope):
            p = s.filter_params()
            n = world.count(a, b, FilterSpec.from_params(p["address"], p["topics"]))
            need = max(1, math.ceil(n / cap) if cap else 1,
                       math.ceil((b - a + 1) / range_cap) if range_cap else 1)
            out[s.name] = out.get(s.name, 0) + need
    return out


def warm_up(url: str, start, days: int) -> None:
    """Make the devchain generate every day before the clock starts (it generates lazily).

    Each request is retried: on a faulty profile (hostile) these plain urllib requests meet
    429/5xx/drops like anyone's, and the devchain serves a retried identical request unfaulted.
    """
    import json
    import time
    import urllib.request

    def post(payload: dict, timeout: float) -> bytes:
        req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        for _ in range(100):
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    body = r.read()
                if b'"result"' in body:
                    return body
            except Exception:  # noqa: BLE001 - any fault of the profile: retry
                pass
            time.sleep(0.2)
        raise RuntimeError("devchain warm-up kept failing")

    head = int(json.loads(post({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}, 30))
               ["result"], 16)
    step = 20_000
    for a in range(0, head, step):
        post({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
              "params": [{"fromBlock": hex(a), "toBlock": hex(min(head, a + step - 1)),
                          "topics": ["0x" + "ee" * 32]}]}, 300)


def run_with_console(settings, holder: dict) -> int:
    """Engine on its own thread and loop, the dashboard rendering on this one (as the CLI does)."""
    import threading

    from console.app import BackfillApp

    ready = threading.Event()

    def engine() -> None:
        def on_ready(sup):
            holder["sup"] = sup
            ready.set()

        holder["code"] = asyncio.run(run_engine(settings, on_ready=on_ready, say=lambda m: None))
        ready.set()

    thread = threading.Thread(target=engine, daemon=True)
    thread.start()
    ready.wait()

    async def drive() -> None:
        app = BackfillApp(holder["sup"], refresh_hz=settings.refresh_hz, drives_engine=True)
        async with app.run_test(size=(160, 48)) as pilot:
            while thread.is_alive():
                await pilot.pause(0.25)
        holder["refreshes"] = app.polls

    asyncio.run(drive())
    thread.join()
    return holder["code"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--density", default="demo")
    ap.add_argument("--profile", default="clean")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--rps", type=float, default=None)
    ap.add_argument("--scope", default="polymarket")
    ap.add_argument("--ui", action="store_true",
                    help="run the console too (headless Textual at 160x48, refreshing at 4 Hz), "
                         "the way `backfill-console run` does: engine thread + UI thread")
    ap.add_argument("--keep", type=Path, help="keep the data dir here (logs, state) for a look afterwards")
    args = ap.parse_args()

    # Only the calendar here: generating the world in this process would inflate our RSS.
    from console.devchain.density import DENSITIES

    start, days = DENSITIES[args.density].default_start, DENSITIES[args.density].default_days
    holder: dict = {}
    with spawn(density=args.density, profile=args.profile, seed=args.seed,
               latency_ms=args.latency_ms) as chain, tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            tmp = str(args.keep)
        warm_up(chain.url, start, days)
        settings = load_settings({
            "rpc_url": chain.url, "start_date": start.isoformat(), "days": days,
            "data_dir": str(Path(tmp) / "data"), "shards": args.shards, "no_rebuild": True,
            "rps": args.rps, "usdc_scope": args.scope, "gate_interval": 86400,
        })
        t0 = time.perf_counter()
        if args.ui:
            code = run_with_console(settings, holder)
        else:
            code = asyncio.run(run_engine(settings, on_ready=lambda sup: holder.setdefault("sup", sup),
                                          say=lambda m: None))
        wall = time.perf_counter() - t0
        served = chain.stats()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sup = holder["sup"]
    st = sup.rpc.stats
    logs = st.logs_received
    rows = sum(d.erc20_count + d.erc1155_count for d in sup.days.values())
    fault = get_profile(args.profile)
    cap = fault.cap
    world = build_world(args.density, seed=args.seed)
    minimum = minimum_calls(world, cap, fault.range_cap, args.scope)
    print(f"world {args.density} seed {args.seed}: {world.days} days · profile {args.profile} · "
          f"latency {args.latency_ms:g} ms · rps {args.rps or 'unlimited'} · shards {args.shards}")
    print(f"exit code            {code}")
    print(f"wall                 {wall:8.2f} s (engine start to finish, devchain already up)")
    print(f"logs received        {logs:>10,}   rows stored (erc20+erc1155) {rows:,}")
    fetch = (max(sup._completed_times) - sup._started) if sup._completed_times else wall
    print(f"end-to-end           {logs / wall:10,.0f} logs/s (whole command)")
    print(f"backfill phase       {logs / fetch:10,.0f} logs/s ({fetch:.2f} s from engine start to the last "
          f"day COMPLETE; the rest is store start-up and the closing gates)")
    print(f"breakdown            parse {st.parse_seconds:.2f} s · decode {sup.ctx.decode_seconds:.2f} s · "
          f"insert {sup.writer.insert_seconds:.2f} s (insert runs on the store thread)")
    print(f"eth_getLogs calls    {st.getlogs_calls:,} (devchain served {served.get('getlogs_calls')}, "
          f"warm-up included)")
    print(f"minimum calls        {sum(minimum.values()):,} at cap {cap or 'none'} "
          f"-> ratio {st.getlogs_calls / max(1, sum(minimum.values())):.3f}")
    print("  per stream         " + " · ".join(
        f"{k} {sup.ctx.calls_by_stream.get(k, 0)}/{v}" for k, v in minimum.items()) + " (calls/minimum)")
    print(f"oversize failures    {st.oversize_failures} ({100 * st.oversize_failures / max(1, st.getlogs_calls):.1f}% of calls)")
    print(f"all calls            {sum(st.calls_by_method.values()):,}  errors {dict(st.errors_by_class)}")
    if args.rps:
        print(f"rate-bound wall      calls/rps = {sum(st.calls_by_method.values()) / args.rps:.1f} s "
              f"-> wall is {wall / (sum(st.calls_by_method.values()) / args.rps):.2f}x")
    print(f"engine peak RSS      {rss_mb:,.0f} MB (this process; the devchain is a separate process)")


if __name__ == "__main__":
    main()
