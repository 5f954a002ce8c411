"""The rebuild on a devchain world (`small`): PnL equals the ground truth to the micro-USDC for
every position whose flows are all HIGH; the win rate is within a point of the truth's."""

from collections import Counter

import pytest

from console.devchain.truth import win_rate as truth_win_rate
from console.devchain.world import build_world
from console.engine.rebuild import SUCCESS_LINE, rebuild
from console.settings import GateThresholds

from .builder import PROFILE, compare_pnl, load_world


@pytest.fixture(scope="module")
def world():
    return build_world("small", seed=1)


@pytest.mark.parametrize("scope", ["polymarket", "all"])
async def test_rebuild_matches_devchain_truth(store, data_dir, world, scope):
    truth = await load_world(store, world, scope=scope)
    out = await rebuild(store, PROFILE, GateThresholds(), data_dir, run_stats={}, run_id="dev")
    assert out.ok, out.reason
    assert (data_dir / "backfill" / "on-complete.log").read_text().splitlines()[-1] == SUCCESS_LINE

    counts = Counter()
    for kind, conf, n in await store.query(
            "SELECT kind, confidence, count() FROM {db}.net_flows GROUP BY kind, confidence"):
        counts[(kind, conf)] = n
    print("\nclassification:", dict(sorted(counts.items())))
    for kind in ("BUY", "SELL", "SPLIT", "MERGE", "TRANSFER"):
        assert sum(n for (k, _), n in counts.items() if k == kind) > 0, kind

    compared, bad = await compare_pnl(store, truth)
    print(f"positions compared (all HIGH): {compared} of {len(truth)}; mismatched {len(bad)}")
    assert compared >= 0.8 * len(truth)
    assert not bad, bad[:5]

    rate, wins, counted = truth_win_rate(truth)
    ours_rate = out.summary["pnl"]["win_rate"]
    print(f"win rate: ours {ours_rate:.4f} truth {rate:.4f} ({wins}/{counted})")
    assert abs(ours_rate - rate) <= 0.01
