"""Shared fixtures: a clean environment for every test (no BACKFILL_* leaking in)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_backfill_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("BACKFILL_"):
            monkeypatch.delenv(key, raising=False)
    yield
