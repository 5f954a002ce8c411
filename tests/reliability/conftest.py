"""Shared fixtures: simulated chains (stopped at the end) and an uninterrupted reference run."""

from __future__ import annotations

import asyncio

import pytest

from console.devchain.process import spawn
from console.engine.launch import run_engine
from tests.reliability.checks import derived_rows, url_settings


@pytest.fixture(scope="session")
def hostile_chain():
    """The `small` world behind the `hostile` profile (caps, 429s, 5xx, drops, truncation)."""
    with spawn(density="small", profile="hostile", seed=1) as chain:
        yield chain


@pytest.fixture(scope="session")
def clean_chain():
    with spawn(density="small", profile="clean", seed=1) as chain:
        yield chain


@pytest.fixture(scope="session")
def reference(tmp_path_factory, hostile_chain):
    """One uninterrupted run with the rebuild: what every interrupted run must end up equal to."""
    settings = url_settings(tmp_path_factory.mktemp("reference") / "data", hostile_chain.url,
                            no_rebuild=False)
    code = asyncio.run(run_engine(settings, say=lambda m: None))
    assert code == 0
    rows = derived_rows(settings)
    assert rows["positions"] and rows["wallet_pnl"], "the reference rebuild produced no PnL"
    return rows
