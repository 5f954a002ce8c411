"""Devchain benchmarks (printed, never asserted): `python bench/devchain.py [--full-days N]`.

- demo world generation: seconds to generate all 14 demo days (and the process RSS after);
- serving a 10,000-log eth_getLogs: median over repeated requests, end-to-end over HTTP on
  loopback (aiohttp client, JSON parsed) and server-side only (select + join of bytes);
- `full` generation speed: logs generated per second on a sample of consecutive days (the
  engine's access pattern; markets are simulated once) and the cost of one cold far day.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from console.devchain.index import FilterSpec  # noqa: E402
from console.devchain.markets import K_CTF, K_REG, K_RES, K_USDC_PM  # noqa: E402
from console.devchain.world import build_world  # noqa: E402
from console.protocol import DEFAULT_PROFILE  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def relevant(dl) -> int:
    return sum(dl.kind.count(k) for k in (K_USDC_PM, K_CTF, K_RES, K_REG))


def bench_demo():
    t = time.perf_counter()
    w = build_world("demo")
    total = rel = 0
    for d in range(w.days):
        dl = w.day_logs(d)
        total += len(dl)
        rel += relevant(dl)
    el = time.perf_counter() - t
    print(f"demo world generation: {el:.2f} s for {w.days} days, {total:,} logs ({rel:,} relevant), "
          f"{total / el:,.0f} logs/s, peak RSS {rss_mb():,.0f} MB")
    return w


async def bench_serve(w):
    import aiohttp
    import orjson

    from console.devchain.server import start_server

    d = 9
    s, e = w.day_bounds(d)
    stream = DEFAULT_PROFILE.streams(w.day_date(d))[2]  # ctf_transfers
    fp = stream.filter_params()
    spec = FilterSpec.from_params(**fp)
    # find a range holding just under 10,000 matching logs
    (dl, pos), = w.query(s, e, spec)
    hi = dl.blocks[pos[10_000]] - 1
    n = w.count(s, hi, spec)
    srv = await start_server(w, "clean")
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
            "params": [{"fromBlock": hex(s), "toBlock": hex(hi), **fp}]}
    http_t, recv_t = [], []
    async with aiohttp.ClientSession() as sess:
        for _ in range(25):
            t = time.perf_counter()
            async with sess.post(srv.url, json=body) as r:
                resp = await r.read()
            recv_t.append(time.perf_counter() - t)
            got = len(orjson.loads(resp)["result"])
            http_t.append(time.perf_counter() - t)
    await srv.stop()
    side = []
    for _ in range(25):
        t = time.perf_counter()
        parts = []
        for dl, pos in w.query(s, hi, spec):
            raw = dl.raw
            parts.extend([raw[p] for p in pos])
        b"[" + b",".join(parts) + b"]"
        side.append(time.perf_counter() - t)
    print(f"serve eth_getLogs of {got:,} logs ({len(resp) / 1e6:.1f} MB, {hi - s + 1} blocks): "
          f"median {statistics.median(recv_t) * 1000:.1f} ms request->last byte over HTTP, "
          f"{statistics.median(http_t) * 1000:.1f} ms incl. client JSON parse, "
          f"{statistics.median(side) * 1000:.1f} ms server-side select+join (n={n:,})")


def bench_full(days: int, first: int):
    w = build_world("full")
    t = time.perf_counter()
    dl = w.day_logs(first)
    cold = time.perf_counter() - t
    total = rel = 0
    t = time.perf_counter()
    for d in range(first + 1, first + 1 + days):
        dl = w.day_logs(d)
        total += len(dl)
        rel += relevant(dl)
    el = time.perf_counter() - t
    print(f"full: cold day {first}: {cold:.2f} s; next {days} consecutive days: {total:,} logs ({rel:,} relevant, "
          f"{rel // days:,}/day) in {el:.2f} s = {total / el:,.0f} logs/s ({rel / el:,.0f} relevant/s); "
          f"extrapolated 1048 days: {1048 * el / days / 60:.0f} min; peak RSS {rss_mb():,.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full-days", type=int, default=10)
    ap.add_argument("--full-first", type=int, default=500)
    a = ap.parse_args()
    w = bench_demo()
    asyncio.run(bench_serve(w))
    bench_full(a.full_days, a.full_first)
    return 0


if __name__ == "__main__":
    sys.exit(main())
