"""`backfill-console devchain`: serve the simulated chain (and optionally write its ground truth).

Import-light on purpose (argparse + stdlib only at import time): console/cli.py imports this
module for every command, and the world/server modules are only loaded by `run()`.
Exit codes follow DESIGN §5.1: 0 stopped cleanly, 2 bad configuration (e.g. a non-loopback host).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
READY_PREFIX = "devchain listening on "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback only: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8545, help="TCP port (0 = any free port)")
    parser.add_argument("--profile", default="demo",
                        help="fault profile: clean, demo, alchemy, alchemy500, infura, quicknode, ankr, erigon, "
                             "polygon, ratelimit, flaky, hostile")
    parser.add_argument("--density", default="demo", help="world density: small, demo, full")
    parser.add_argument("--seed", type=int, default=1, help="world and fault-schedule seed")
    parser.add_argument("--start-date", default=None, help="first UTC day of the world (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, default=None, help="number of UTC days in the world")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per HTTP request")
    parser.add_argument("--range-cap", type=int, default=None, metavar="BLOCKS",
                        help="refuse eth_getLogs over more than BLOCKS blocks (the profile's own range error, "
                             "else QuickNode's -32614), on top of the profile's faults")
    parser.add_argument("--export-truth", metavar="DIR", default=None,
                        help="write the ground truth (JSONL) to DIR before serving")
    parser.add_argument("--watch-stdin", action="store_true", help=argparse.SUPPRESS)  # exit on stdin EOF
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # exit when it dies


def _fail(msg: str) -> int:
    print(f"❌ devchain: {msg}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if args.host not in LOOPBACK_HOSTS:
        return _fail(f"refusing to bind {args.host!r}: the devchain serves on loopback (127.0.0.1) only")
    if not (0 <= args.port <= 65535):
        return _fail(f"bad port {args.port}")
    start = None
    if args.start_date:
        try:
            start = dt.date.fromisoformat(args.start_date)
        except ValueError:
            return _fail(f"bad --start-date {args.start_date!r} (want YYYY-MM-DD)")
    if args.days is not None and args.days < 1:
        return _fail("--days must be >= 1")
    if args.range_cap is not None and args.range_cap < 1:
        return _fail("--range-cap must be >= 1")

    from .density import DENSITIES
    from .faults import PROFILES, get_profile

    if args.profile not in PROFILES:
        return _fail(f"unknown profile {args.profile!r} (one of {', '.join(PROFILES)})")
    if args.density not in DENSITIES:
        return _fail(f"unknown density {args.density!r} (one of {', '.join(DENSITIES)})")

    import asyncio

    from .world import build_world

    world = build_world(args.density, seed=args.seed, start_date=start, days=args.days,
                        log_timestamps=get_profile(args.profile).log_timestamps)
    print(
        f"devchain: SIMULATED Polygon chain (chain id {world.chain_id}; not a real network) - density "
        f"{args.density}, seed {args.seed}, {world.start_date.isoformat()} + {world.days} days, head {world.head}, "
        f"fault profile {args.profile}" + (f", eth_getLogs range cap {args.range_cap}" if args.range_cap else ""),
        flush=True,
    )
    if args.export_truth:
        counts = world.export_truth(args.export_truth)
        summary = ", ".join(f"{k.split('.')[0]}={v}" for k, v in counts.items())
        print(f"devchain: ground truth written to {args.export_truth} ({summary})", flush=True)
    try:
        return asyncio.run(_serve(world, args))
    except OSError as exc:
        return _fail(f"cannot listen on 127.0.0.1:{args.port}: {exc}")
    except KeyboardInterrupt:
        return 0


def range_cap_overrides(args: argparse.Namespace) -> dict:
    """The profile fields `--range-cap` replaces (none without it)."""
    if args.range_cap is None:
        return {}
    from .faults import get_profile

    return {"range_cap": args.range_cap, "range_style": get_profile(args.profile).range_style or "quicknode"}


async def _serve(world, args) -> int:
    import asyncio
    import signal

    from .server import start_server

    srv = await start_server(world, args.profile, host="127.0.0.1", port=args.port,
                             latency_ms=args.latency_ms, seed=args.seed, **range_cap_overrides(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    if args.watch_stdin:
        def _stdin() -> None:
            try:
                while sys.stdin.buffer.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=_stdin, name="devchain-stdin", daemon=True).start()
    if args.parent_pid:
        async def _watch_parent() -> None:
            while not stop.is_set():
                if os.getppid() != args.parent_pid:
                    stop.set()
                    return
                await asyncio.sleep(0.5)

        loop.create_task(_watch_parent())
    print(f"{READY_PREFIX}{srv.url}  (SIMULATED chain - Ctrl+C to stop)", flush=True)
    try:
        await stop.wait()
    finally:
        await srv.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="backfill-console devchain",
                                     description="Serve a simulated Polygon JSON-RPC node (devchain).")
    add_arguments(parser)
    return run(parser.parse_args(argv))
