from __future__ import annotations

import time
from typing import Callable

import pytest

from console.app import BackfillApp
from tests.ui.fake_supervisor import T0, FakeSupervisor


async def wait_for(pilot, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until `cond()` holds (no fixed sleeps); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.01)


async def refresh(pilot) -> None:
    """One deterministic refresh: poll the supervisor now and let the UI settle."""
    pilot.app.poll()
    await pilot.pause()


@pytest.fixture
def fake() -> FakeSupervisor:
    return FakeSupervisor()


@pytest.fixture
def make_app(tmp_path):
    def _make(sup: FakeSupervisor, **kw) -> BackfillApp:
        kw.setdefault("refresh_hz", 0.2)  # tests drive refreshes with `refresh()`
        kw.setdefault("reports_dir", tmp_path / "reports")
        kw.setdefault("clock", lambda: T0)
        return BackfillApp(sup, **kw)

    return _make
