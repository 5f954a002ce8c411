"""A headless run over a devchain world stores exactly the world's ground truth."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import TABLES, engine_settings, query, run, stored_rows, truth


@pytest.mark.parametrize("profile,scope", [("clean", "polymarket"), ("hostile", "polymarket"),
                                           ("infura", "polymarket"), ("clean", "all")])
def test_rows_equal_ground_truth(tmp_path, profile, scope):
    settings = engine_settings(tmp_path / "data", devchain_profile=profile, usdc_scope=scope)
    assert run(settings) == 0
    for table in TABLES:
        got = stored_rows(settings, table)
        want = truth(settings, table, scope)
        assert want, f"the world has no {table} rows: the comparison would prove nothing"
        assert len(got) == len(want), table
        assert got == want, table


def test_runbook_queries_match_truth(tmp_path):
    settings = engine_settings(tmp_path / "data")
    assert run(settings) == 0
    days = settings.day_count(3)
    done = query(settings, "SELECT countIf(status='COMPLETE') as days_done, max(day_idx) as max_day\n"
                           "FROM backfill_checkpoint;")
    assert done == [(days, days - 1)]
    volume = query(settings, "SELECT SUM(erc20_count), SUM(erc1155_count) FROM backfill_checkpoint;")
    assert volume == [(len(truth(settings, "erc20_transfers", "polymarket")),
                       len(truth(settings, "erc1155_transfers", "polymarket")))]
    health = query(settings, "SELECT worker_id, last_batch, dateDiff('minute', updated_at, now()) as mins_ago\n"
                             "FROM worker_heartbeats ORDER BY worker_id;")
    assert [w for w, _, _ in health] == [0, 1, 2]
    assert all(m <= 1 for _, _, m in health)


def test_rerun_resumes_and_stays_exact(tmp_path):
    settings = engine_settings(tmp_path / "data")
    assert run(settings) == 0
    assert run(settings) == 0  # nothing left to do; still exact, no duplicates
    for table in ("erc20_transfers", "erc1155_transfers"):
        assert stored_rows(settings, table) == truth(settings, table, "polymarket")
