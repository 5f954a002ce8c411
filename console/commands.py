"""The sub-commands behind console/cli.py, one function each, returning an exit code."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import sqlite3
import sys
import threading

from console.settings import ConfigError, Settings

EXIT_OK, EXIT_GATE, EXIT_CONFIG, EXIT_ABORTED, EXIT_RUNTIME = 0, 1, 2, 3, 4


def _err(message: str) -> None:
    print(f"backfill-console: {message}", file=sys.stderr, flush=True)


def human_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def status_line(snap) -> str:
    """The headless progress line (also used by `status`)."""
    errs = " ".join(f"{k}={v}" for k, v in snap.rpc.errors_by_class.items() if v) or "none"
    chain = " · SIMULATED CHAIN" if snap.simulated_chain else ""
    return (f"[{snap.engine_state}] days {snap.days_done}/{snap.days_total}"
            f"{f' ({snap.days_failed} failed)' if snap.days_failed else ''} · logs {snap.logs_total:,}"
            f" · {snap.logs_per_s:,.0f} logs/s · calls {snap.rpc.calls_total:,}"
            f" · errors {errs} · ETA {human_seconds(snap.eta_seconds)}{chain}")


# --- run --------------------------------------------------------------------------------------
def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if getattr(args, "no_ui", False):
        return run_headless(settings)
    if not sys.stdout.isatty() and os.environ.get("BACKFILL_FORCE_UI") != "1":
        _err("no terminal for the console; running headless (use --no-ui to say so)")
        return run_headless(settings)
    return run_with_ui(settings)


def run_headless(settings: Settings) -> int:
    from console.engine.launch import run_engine

    async def main() -> int:
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task] = []
        signals = {"count": 0}

        async def on_ready(sup) -> None:
            def on_signal(signame: str) -> None:
                signals["count"] += 1
                if signals["count"] > 1:
                    print(f"\n{signame} again: exiting now", flush=True)
                    os._exit(EXIT_ABORTED)
                print(f"\n{signame}: stopping cleanly (finishing writes); signal again to exit at once",
                      flush=True)
                sup.stop()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal, sig.name)
            print(sup.describe(), flush=True)
            tasks.append(asyncio.ensure_future(_status_printer(sup)))
            if settings.report_every:
                tasks.append(asyncio.ensure_future(_periodic_reports(sup, settings)))

        try:
            code = await run_engine(settings, on_ready=on_ready)
        finally:
            for t in tasks:
                t.cancel()
        return code

    try:
        code = asyncio.run(main())
    except ConfigError:
        raise
    _print_outcome(settings)
    return code


def _print_outcome(settings: Settings) -> None:
    from console.engine.remote import RemoteSupervisor

    try:
        snap = RemoteSupervisor(settings.data_dir, live=False).snapshot()
    except FileNotFoundError:
        return
    print(status_line(snap), flush=True)
    if snap.stop_reason:
        print(f"result: {snap.stop_reason}", flush=True)
    if snap.exit_code is not None:
        print(f"exit code {snap.exit_code}", flush=True)


async def _status_printer(sup, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        print(status_line(sup.snapshot()), flush=True)


async def _periodic_reports(sup, settings: Settings) -> None:
    """--report-every: the dashboard as SVG + PNG, rendered off the engine's loop."""
    from console.report import save_report

    while True:
        await asyncio.sleep(settings.report_every)
        try:
            svg, png = await asyncio.to_thread(save_report, sup.snapshot(), settings.data_dir / "reports")
            print(f"report written: {svg} and {png.name}", flush=True)
        except Exception as exc:
            _err(f"report failed: {type(exc).__name__}: {exc}")


def run_with_ui(settings: Settings) -> int:
    """Engine on its own thread and event loop; the console on the main thread."""
    from console.engine.launch import run_engine

    ready = threading.Event()
    holder: dict = {}

    def engine_thread() -> None:
        async def on_ready(sup) -> None:
            holder["sup"] = sup
            ready.set()

        try:
            holder["code"] = asyncio.run(run_engine(settings, on_ready=on_ready, say=lambda m: print(m, flush=True)))
        except ConfigError as exc:
            holder["error"] = exc
        except BaseException as exc:  # pragma: no cover
            holder["crash"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=engine_thread, name="engine", daemon=True)
    thread.start()
    ready.wait()
    if "sup" not in holder:
        thread.join()
        if "error" in holder:
            raise holder["error"]
        if "crash" in holder:
            _err(f"engine failed to start: {holder['crash']}")
            return EXIT_RUNTIME
        return holder.get("code", EXIT_RUNTIME)
    from console.app import BackfillApp

    sup = holder["sup"]
    app = BackfillApp(sup, refresh_hz=settings.refresh_hz, reports_dir=settings.data_dir / "reports",
                      drives_engine=True)
    app.run()
    if thread.is_alive():
        sup.stop()
        thread.join()
    _print_outcome(settings)
    return holder.get("code", EXIT_ABORTED)


# --- attach / status / screenshot --------------------------------------------------------------
def _need_state(settings: Settings) -> None:
    from console.engine.state import STATE_FILE

    if not (settings.data_dir / STATE_FILE).is_file():
        raise ConfigError(f"--data-dir {settings.data_dir}: no run here yet (start one with `backfill-console run`)")


def cmd_attach(settings: Settings, args: argparse.Namespace) -> int:
    from console.engine.launch import lock_holder
    from console.engine.remote import RemoteSupervisor

    _need_state(settings)
    if lock_holder(settings.data_dir) is None:
        _err(f"no engine is running on {settings.data_dir}: showing its last state (read-only)")
        read_only = True
    else:
        read_only = bool(settings.read_only)
    from console.app import BackfillApp

    sup = RemoteSupervisor(settings.data_dir, read_only=read_only)
    try:
        sup.snapshot()
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    BackfillApp(sup, refresh_hz=settings.refresh_hz, reports_dir=settings.data_dir / "reports",
                drives_engine=False).run()
    return EXIT_OK


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from console.engine.launch import lock_holder
    from console.engine.remote import RemoteSupervisor
    from console.engine.state import STATE_FILE

    if not (settings.data_dir / STATE_FILE).is_file():
        if args.json:
            print(json.dumps({"data_dir": str(settings.data_dir), "state": "empty"}))
        else:
            print(f"{settings.data_dir}: no run here yet (empty or missing data dir)")
        return EXIT_OK
    pid = lock_holder(settings.data_dir)
    try:
        snap = RemoteSupervisor(settings.data_dir, live=False).snapshot()
    except (FileNotFoundError, sqlite3.DatabaseError) as exc:
        what = ("damaged" if isinstance(exc, sqlite3.DatabaseError) else "started")
        if args.json:
            print(json.dumps({"data_dir": str(settings.data_dir), "state": what, "running_pid": pid}))
        elif what == "damaged":
            print(f"{settings.data_dir}: state.sqlite is damaged ({exc}); the next `run` rebuilds it "
                  f"from ClickHouse")
        else:
            print(f"{settings.data_dir}: a run was started but has published no state yet")
        return EXIT_OK
    if args.json:
        from dataclasses import asdict

        body = asdict(snap)
        body["running_pid"] = pid
        print(json.dumps(body, default=str, indent=1))
        return EXIT_OK
    print(f"{settings.data_dir}: {'running (pid %s)' % pid if pid else 'not running'}"
          f" · snapshot {snap.taken_at:%Y-%m-%d %H:%M:%SZ}")
    print(status_line(snap))
    for s in snap.shards:
        print(f"  shard {s.shard_id}: {s.state:<10} days {s.days_done}/{s.days_owned}"
              f"{' day ' + str(s.day_idx) if s.day_idx is not None else ''}"
              f"{' restarts ' + str(s.restarts) if s.restarts else ''}"
              f"{' last error: ' + s.last_error if s.last_error else ''}")
    for g in snap.gates:
        print(f"  gate {g.name} ({g.mode}): {g.value:.4g} {g.comparator} {g.threshold:.4g} "
              f"{'✔ PASS' if g.passed else '✘ FAIL'}")
    if snap.stop_reason:
        print(f"  result: {snap.stop_reason}")
    return EXIT_OK


def parse_size(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {text!r}: expected COLUMNSxROWS like 160x48") from None
    if not (40 <= cols <= 500 and 12 <= rows <= 300):
        raise ConfigError(f"--size {text!r}: expected 40..500 columns and 12..300 rows")
    return cols, rows


def cmd_screenshot(settings: Settings, args: argparse.Namespace) -> int:
    from console.engine.remote import RemoteSupervisor

    size = parse_size(args.size)
    out = args.out
    if out is not None and out.suffix.lower() not in (".svg", ".png"):
        raise ConfigError(f"--out {out}: expected a .svg or .png file name")
    _need_state(settings)
    sup = RemoteSupervisor(settings.data_dir, read_only=True, live=False)
    try:
        sup.snapshot()
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    if out is None:
        out = settings.data_dir / "reports" / (dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".svg")
    from console.engine.launch import check_dir
    from console.report import render_snapshot

    check_dir(out.parent, "--out")
    try:
        render_snapshot(sup, out, size)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write it ({exc.strerror})") from None
    print(out)
    return EXIT_OK


# --- gates / rebuild ----------------------------------------------------------------------------
def _offline_store(settings: Settings) -> list[str]:
    """Check that no engine holds the data dir (chDB allows one process); returns the stream
    names the run's days must cover (from the run's start date in the mirror)."""
    from console.engine.launch import lock_holder
    from console.engine.state import open_readonly

    _need_state(settings)
    pid = lock_holder(settings.data_dir)
    if pid:
        raise ConfigError(f"--data-dir {settings.data_dir}: a run is active (pid {pid}); "
                          f"press g in `backfill-console attach` to run the gates there")
    try:
        conn = open_readonly(settings.data_dir)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'start_date'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"--data-dir {settings.data_dir}: state.sqlite is damaged ({exc}); "
                          f"`backfill-console run` rebuilds it from ClickHouse") from None
    if not row:
        return []
    start = dt.date.fromisoformat(row[0])
    return [s.name for s in settings.profile().streams(start, settings.usdc_scope)]


def cmd_gates(settings: Settings, args: argparse.Namespace) -> int:
    streams = _offline_store(settings)
    from console.engine.gates import run_gates
    from console.engine.launch import data_dir_lock
    from console.engine.logs import close_loggers, file_logger
    from console.engine.store import Store

    mode = "strict" if args.strict else "relaxed"

    async def go():
        store = await Store.open(settings.dsn, settings.database)
        try:
            return await run_gates(store, settings.profile(), settings.gates, mode,
                                   logger=file_logger(settings.data_dir, "gates"), streams=streams)
        finally:
            await store.close()
            close_loggers(settings.data_dir)

    with data_dir_lock(settings.data_dir):
        results = asyncio.run(go())
    for g in results:
        print(f"{'✔ PASS' if g.passed else '✘ FAIL'}  {g.name:<28} {g.value:.6g} {g.comparator} "
              f"{g.threshold:.6g}  ({mode}){'  ' + g.detail if g.detail else ''}")
    return EXIT_OK if all(g.passed for g in results) else EXIT_GATE


def cmd_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    streams = _offline_store(settings)
    from console.engine.launch import data_dir_lock
    from console.engine.logs import close_loggers, file_logger
    from console.engine.rebuild import rebuild
    from console.engine.store import Store

    async def go():
        store = await Store.open(settings.dsn, settings.database)
        try:
            rows = await store.query(
                "SELECT count(), countIf(status = 'COMPLETE') FROM {db}.backfill_checkpoint")
            total, done = rows[0]
            if total == 0 or done < total:
                raise ConfigError(f"rebuild needs every day COMPLETE: {done} of {total} are")
            return await rebuild(store, settings.profile(), settings.gates, settings.data_dir,
                                 run_stats={"source": "backfill-console rebuild"},
                                 logger=file_logger(settings.data_dir, "on-complete"), streams=streams,
                                 on_step=lambda s: print(f"step {s.index} {s.name}: {s.state}"
                                                         + (f" ({s.seconds:.1f}s)" if s.seconds else "")))
        finally:
            await store.close()
            close_loggers(settings.data_dir)

    with data_dir_lock(settings.data_dir):
        outcome = asyncio.run(go())
    print(("✅ REBUILD COMPLETE - READY FOR PRODUCTION" if outcome.ok else f"❌ rebuild stopped: {outcome.reason}"))
    if outcome.report_path:
        print(f"report: {outcome.report_path}")
    return outcome.exit_code
