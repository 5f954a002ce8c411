"""Issue 7.2: every devchain provider profile gives exactly the ground truth.

tests/e2e/test_exact_backfill.py already runs `clean`, `hostile` and `infura`; here are the
other nine. Each run goes through a devchain of that profile (its own child process) and must
store exactly the world's rows, with every day tiled and no duplicate; where the profile's
faults can fire on the `small` world, the chain's own counters must show that they did (so a
pass is not a fault-free run in disguise).

On `small` (≤ ~2,000 logs a day) the 10K/20K response caps of `alchemy`, `erigon` (and the
cap half of `demo`) never trigger, so a second set puts each provider's *own* cap message
(console/devchain/faults.cap_error, the text the devchain serves) in front of a clean chain
at 150 logs, where the engine must split by the hint (or, for Ankr, without one) and still
land every row.

To fit the suite's time budget every engine of the matrix runs at once, in this process
(asyncio.gather; each against its own chain, all into one embedded ClickHouse, one database
per case); each parametrized test then checks its own case.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading

import pytest

from console.devchain.faults import PROFILES, cap_error
from console.devchain.process import spawn
from console.engine.launch import run_engine
from tests.e2e.proxy import FaultProxy, get_logs_range
from tests.reliability.checks import (
    DAYS, Reader, assert_complete_days_tile, assert_exact, assert_no_duplicates, url_settings,
)

NOT_YET_COVERED = ["demo", "alchemy", "alchemy500", "quicknode", "ankr", "erigon", "polygon",
                   "ratelimit", "flaky"]
CAP_ONLY = {"alchemy", "erigon"}  # their only fault is a response cap `small` never reaches
CAP_STYLES = ["alchemy", "infura", "ankr", "erigon"]
CAP = 150


def _cap_rewrite(style: str, fired: dict, lock: threading.Lock):
    profile = dataclasses.replace(PROFILES[style], cap=CAP)

    def enforce_cap(payload, reply):
        rng = get_logs_range(payload)
        logs = reply.get("result")
        if rng is None or not isinstance(logs, list) or len(logs) <= CAP:
            return reply
        blocks = sorted(int(log["blockNumber"], 16) for log in logs)
        err = cap_error(profile, rng[0], rng[1], len(logs), lambda i: blocks[i])
        with lock:
            fired[style] = fired.get(style, 0) + 1
        return {"jsonrpc": "2.0", "id": payload["id"], "error": err.payload()}

    return enforce_cap


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, clean_chain):
    root = tmp_path_factory.mktemp("matrix")
    dsn = f"chdb://{root / 'clickhouse'}"
    fired: dict[str, int] = {}
    lock = threading.Lock()
    with contextlib.ExitStack() as stack:
        chains = {p: stack.enter_context(spawn(density="small", profile=p, seed=1)) for p in NOT_YET_COVERED}
        cases = {p: url_settings(root / p, chains[p].url, clickhouse=dsn, database=f"profile_{p}")
                 for p in NOT_YET_COVERED}
        for style in CAP_STYLES:
            proxy = stack.enter_context(FaultProxy(clean_chain.url))
            proxy.rewrites.append(_cap_rewrite(style, fired, lock))
            cases[f"cap-{style}"] = url_settings(root / f"cap-{style}", proxy.url, clickhouse=dsn,
                                                 database=f"cap_{style}")

        async def all_runs():
            return await asyncio.wait_for(asyncio.gather(
                *(run_engine(s, say=lambda m: None) for s in cases.values()), return_exceptions=True), 300)

        codes = dict(zip(cases, asyncio.run(all_runs())))
        stats = {p: c.stats() for p, c in chains.items()}
        for c in chains.values():  # stop them together, not one grace period after another
            c.proc.terminate()
    db = Reader(next(iter(cases.values())))  # one connection to the shared store for every check
    yield {"cases": cases, "codes": codes, "stats": stats, "fired": fired, "db": db}
    db.close()


def _assert_case(matrix, name: str) -> None:
    settings = matrix["cases"][name]
    assert matrix["codes"][name] == 0, matrix["codes"][name]
    db = matrix["db"].use(settings)
    assert_exact(settings, db=db)
    assert_no_duplicates(settings, db=db)
    assert assert_complete_days_tile(settings, db=db) == DAYS


@pytest.mark.slow
@pytest.mark.parametrize("profile", NOT_YET_COVERED)
def test_profile_gives_exact_ground_truth(matrix, profile):
    _assert_case(matrix, profile)
    if profile not in CAP_ONLY:
        assert matrix["stats"][profile]["errors_total"] > 0, \
            f"profile {profile} injected no fault: the run proved nothing"


@pytest.mark.slow
@pytest.mark.parametrize("style", CAP_STYLES)
def test_provider_cap_message_is_split_and_stays_exact(matrix, style):
    assert matrix["fired"].get(style, 0) > 0, "the cap never fired: the test proved nothing"
    _assert_case(matrix, f"cap-{style}")
