"""The whole product on a devchain world: backfill -> gates -> rebuild -> report, by itself."""

from __future__ import annotations

import asyncio
import json

from console.devchain.truth import win_rate as truth_win_rate
from console.devchain.world import build_world
from console.engine.rebuild import SUCCESS_LINE
from console.engine.store import Store
from tests.e2e.helpers import engine_settings, run
from tests.rebuild.builder import compare_pnl


def test_backfill_then_rebuild_matches_the_truth_pnl(tmp_path):
    settings = engine_settings(tmp_path / "data", devchain_profile="hostile", no_rebuild=False)
    assert run(settings) == 0
    log = (settings.data_dir / "backfill" / "on-complete.log").read_text().splitlines()
    assert log[-1] == SUCCESS_LINE
    reports = list(settings.data_dir.glob("post_rebuild_snapshot_*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert report["rpc"]["getlogs_calls"] > 0 and report["rpc"]["simulated_chain"] is True
    assert all(g["passed"] for g in report["gates"])

    truth = build_world("small", seed=1).truth_rows("pnl")

    async def check():
        store = await Store.open(settings.dsn, settings.database, apply_schema=False)
        try:
            return await compare_pnl(store, truth)
        finally:
            await store.close()

    compared, bad = asyncio.run(check())
    assert compared >= 0.8 * len(truth)
    assert not bad, bad[:3]
    rate, _, _ = truth_win_rate(truth)
    assert abs(report["pnl"]["win_rate"] - rate) <= 0.01
