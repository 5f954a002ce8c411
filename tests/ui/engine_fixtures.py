"""The real engine under the console tests: a slowed devchain, the engine on its own thread and
event loop (the `run_with_ui` pattern), and per-shard RPC counters.

The devchain answers every request after `LATENCY_MS` and, like QuickNode, refuses eth_getLogs
over `RANGE_CAP` blocks. A `small` day then takes five calls per stream, one after another, so a
shard is mid-day most of the time: without the cap a stream's day is one call and "mid-day"
lasted milliseconds, which a test could miss until the run ended. A 60-day run takes about half
a minute: long enough to press keys and watch what the engine does, and every test stops
its engine in teardown long before that. One devchain serves a whole test module (it is
stateless; every test has its own data dir and engine).

Per-shard RPC counts: the engine counts calls only in total, so `EngineRun` wraps the real
supervisor's shard task entry (`_shard_main`) to tag each shard's task context with its shard
id, and the RPC client's `call`/`batch` to count by that tag (gathered sub-tasks inherit the
context). Nothing else of the engine is touched.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from console.devchain.process import DevchainProcess, spawn
from console.engine.launch import run_engine
from tests.e2e.helpers import engine_settings

LATENCY_MS = 150
RANGE_CAP = 10_000  # blocks per eth_getLogs; a day has ~43,200
START = dt.date(2024, 10, 28)
WORLD_DAYS = 60  # the devchain's world; a run asks for `days` of it
SHARDS = 3

_SHARD: contextvars.ContextVar[int | None] = contextvars.ContextVar("shard_under_test", default=None)


class EngineRun:
    """One real engine (`run_engine`) on a background thread with its own event loop."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.sup: Any = None
        self.code: int | None = None
        self.error: BaseException | None = None
        self.calls: collections.Counter[tuple[int | None, str]] = collections.Counter()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="engine-under-test", daemon=True)

    # -- the engine thread ------------------------------------------------------------------
    def _main(self) -> None:
        async def on_ready(sup: Any) -> None:
            self._instrument(sup)
            self.sup = sup
            self._ready.set()

        try:
            self.code = asyncio.run(run_engine(self.settings, on_ready=on_ready, say=lambda _m: None))
        except BaseException as exc:  # noqa: BLE001 - reported by start()/stop()
            self.error = exc
        finally:
            self._ready.set()

    def _instrument(self, sup: Any) -> None:
        counts = self.calls
        original_open, original_main = sup.open, sup._shard_main

        async def shard_main(worker: Any) -> None:
            _SHARD.set(worker.rt.shard_id)  # this task's context (and its sub-tasks')
            await original_main(worker)

        async def open_and_count() -> None:
            await original_open()
            rpc = sup.rpc
            original_call, original_batch = rpc.call, rpc.batch

            async def call(method: str, params: Any, **kw: Any) -> Any:
                counts[(_SHARD.get(), method)] += 1
                return await original_call(method, params, **kw)

            async def batch(calls: list) -> list:
                counts[(_SHARD.get(), "batch")] += 1
                return await original_batch(calls)

            rpc.call, rpc.batch = call, batch

        sup.open, sup._shard_main = open_and_count, shard_main

    # -- control from the test thread -----------------------------------------------------------
    def start(self, timeout: float = 60) -> "EngineRun":
        self.thread.start()
        if not self._ready.wait(timeout):
            raise AssertionError("the engine did not start in time")
        if self.sup is None:
            raise AssertionError(f"the engine did not start: code {self.code}, error {self.error!r}")
        return self

    def stop(self, timeout: float = 60) -> None:
        """Stop cleanly and join (asked again every second: a stop sent before the engine's
        loop runs is dropped by design)."""
        deadline = time.monotonic() + timeout
        while self.thread.is_alive() and time.monotonic() < deadline:
            if self.sup is not None:
                self.sup.stop()
            self.thread.join(1.0)
        assert not self.thread.is_alive(), "the engine did not stop in time"

    def finished(self) -> bool:
        return self._ready.is_set() and not self.thread.is_alive()

    def wait(self, cond: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
        """Block the calling thread until `cond()` (for use outside a running app)."""
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not reached in {timeout} s")
            if self.finished() and not cond():
                raise AssertionError(f"{what}: the engine ended first (code {self.code}, {self.error!r})")
            time.sleep(0.02)

    # -- what the engine is doing ---------------------------------------------------------------
    def runtime(self, shard_id: int) -> Any:
        return self.sup.runtimes.get(shard_id)

    def shard_calls(self, shard_id: int, method: str | None = None) -> int:
        """RPC calls (batches count once) a shard's task has made, all methods or one."""
        return sum(n for (sid, m), n in list(self.calls.items())
                   if sid == shard_id and (method is None or m == method))

    def other_calls(self, shard_id: int) -> int:
        return sum(n for (sid, _m), n in list(self.calls.items()) if sid is not None and sid != shard_id)

    def all_shard_calls(self) -> int:
        return sum(n for (sid, _m), n in list(self.calls.items()) if sid is not None)

    def fetching(self, shard_id: int) -> bool:
        """The shard is inside a day and has fetched part of it (a pause then lands mid-day)."""
        rt = self.runtime(shard_id)
        return (rt is not None and rt.state == "running" and rt.day_idx is not None
                and rt.blocks_done > 0 and rt.blocks_done < rt.blocks_total)


@pytest.fixture(scope="module")
def slow_chain() -> Iterator[DevchainProcess]:
    dc = spawn(density="small", profile="clean", latency_ms=LATENCY_MS, range_cap=RANGE_CAP, start_date=START,
               days=WORLD_DAYS)
    try:
        yield dc
    finally:
        dc.stop()
    assert not dc.alive()


@pytest.fixture
def start_engine(slow_chain, tmp_path) -> Iterator[Callable[..., EngineRun]]:
    """`start_engine(days=..., **settings)`: a running engine; stopped in teardown."""
    runs: list[EngineRun] = []

    def _start(days: int = WORLD_DAYS, data_dir: Path | None = None, **over: Any) -> EngineRun:
        over.setdefault("shards", SHARDS)
        over.setdefault("refresh_hz", 10)
        settings = engine_settings(data_dir or tmp_path / f"data{len(runs)}", rpc_url=slow_chain.url,
                                   start_date=START.isoformat(), days=days, **over)
        run = EngineRun(settings)
        runs.append(run)
        return run.start()

    yield _start
    for run in runs:
        run.stop()


# -- console-side helpers shared by the real-engine and attach tests ----------------------------
async def until(pilot: Any, cond: Callable[[], bool], timeout: float = 20, what: str = "condition",
                engine: EngineRun | None = None) -> None:
    """Let the app run until `cond()` holds; fail with `what` after `timeout` (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout} s")
        if engine is not None and engine.finished() and not cond():
            raise AssertionError(f"{what}: the engine ended first (code {engine.code}, {engine.error!r})")
        await pilot.pause(0.02)


async def acked(pilot: Any, app: Any, text: str, timeout: float = 5) -> None:
    """The console acknowledged a key (its event-log line)."""
    await until(pilot, lambda: text in log_text(app), timeout, f"acknowledged: {text!r}")


async def on_screen(pilot: Any, app: Any, screen_type: type, timeout: float = 5) -> None:
    await until(pilot, lambda: isinstance(app.screen, screen_type), timeout, f"{screen_type.__name__} shown")


def footer_label(app: Any, key: str) -> tuple[str, bool] | None:
    """(description, enabled) of the binding the footer shows for `key`."""
    active = app.screen.active_bindings.get(key)
    if active is None:
        return None
    return active.binding.description, active.enabled


def log_text(app: Any) -> str:
    from console.widgets import EventLog

    log = app.dashboard.query_one(EventLog)
    return "\n".join(strip.text for strip in log.lines)


def app_shard(app: Any, shard_id: int) -> Any:
    """The shard as the console last saw it (its latest polled snapshot)."""
    snap = app.snapshot
    if snap is None:
        return None
    return next((s for s in snap.shards if s.shard_id == shard_id), None)


def run_ended(app: Any) -> bool:
    """The console has seen the run's final state."""
    return app.snapshot is not None and app.snapshot.engine_state in ("done", "failed", "aborted", "stopped")
