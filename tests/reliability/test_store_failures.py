"""Issue 7.3: store failures, injected at the store boundary (Store.insert_columns).

- inserts that fail, or that succeed while the caller hears an error (a lost ack), are retried
  by the writer: nothing lost, nothing doubled (not even before merges: the dedup token);
- a slow store only slows the run (back-pressure), the result stays exact;
- a store that stays down stops the run with exit 4 and a reason that says so, within the
  writer's retry bound (shortened here), and a resume afterwards is exact.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from console.cli import main
from console.engine.launch import run_engine
from console.engine.store import Store, StoreError
from console.engine.writer import Writer
from tests.reliability.checks import (
    DAYS, assert_complete_days_tile, assert_exact, assert_no_duplicates, reader, truth_rows, url_settings,
)

ORIGINAL_INSERT = Store.insert_columns
DATA = ("erc20_transfers", "erc1155_transfers")


class InjectedStore:
    """Decides, per insert, whether the store fails, loses the ack, is slow, or is down.

    `plan` maps (table, n) to "raise" or "lost_ack" for the n-th call into that table, retries
    included (so (t, 1) "raise" + (t, 2) "lost_ack" fails a batch, then loses its retry's ack)."""

    def __init__(self, plan: dict[tuple[str, int], str] | None = None, delay: float = 0.0,
                 down_after: int | None = None) -> None:
        self.plan = dict(plan or {})
        self.delay = delay
        self.down_after = down_after
        self.calls = 0
        self.by_table: dict[str, int] = {}
        self.fired: list[tuple[str, int, str]] = []

    async def insert(self, store, table, columns, *, dedup_token=None):
        self.calls += 1
        nth = self.by_table[table] = self.by_table.get(table, 0) + 1
        if self.delay:  # on the store's own thread: everything queued behind waits too
            await store._run(time.sleep, self.delay)
        if self.down_after is not None and self.calls > self.down_after:
            self.fired.append((table, nth, "down"))
            raise StoreError("OperationalError: injected: Connection refused (store down)")
        action = self.plan.get((table, nth))
        if action == "raise":
            self.fired.append((table, nth, action))
            raise StoreError("OperationalError: injected: Connection reset by peer")
        result = await ORIGINAL_INSERT(store, table, columns, dedup_token=dedup_token)
        if action == "lost_ack":
            self.fired.append((table, nth, action))
            raise StoreError("OperationalError: injected: connection lost after the insert")
        return result


@pytest.fixture
def inject(monkeypatch):
    def install(**kw) -> InjectedStore:
        fake = InjectedStore(**kw)

        async def insert_columns(self, table, columns, *, dedup_token=None):
            return await fake.insert(self, table, columns, dedup_token=dedup_token)

        monkeypatch.setattr(Store, "insert_columns", insert_columns)
        return fake

    return install


def _run(settings, box: dict | None = None) -> int:
    async def ready(sup):
        if box is not None:
            box["sup"] = sup

    return asyncio.run(asyncio.wait_for(run_engine(settings, say=lambda m: None, on_ready=ready), 240))


def _raw_counts_equal_truth(settings) -> None:
    """Before any FINAL: a retried insert whose first try landed must not be stored twice."""
    with reader(settings) as db:
        for table in DATA:
            raw = db.query(f"SELECT count() FROM {table}")[0][0]
            assert raw == len(truth_rows(settings, table)), (table, raw)


def test_failed_and_unacknowledged_inserts_are_retried_without_loss_or_duplicates(tmp_path, clean_chain,
                                                                                   inject):
    plan = {("erc20_transfers", 1): "lost_ack", ("erc1155_transfers", 1): "raise",
            ("erc1155_transfers", 2): "lost_ack", ("coverage_ledger_versions", 1): "raise",
            ("coverage_ledger_versions", 2): "lost_ack", ("backfill_checkpoint_versions", 1): "raise",
            ("backfill_checkpoint_versions", 2): "lost_ack", ("day_blocks_versions", 1): "raise"}
    fake = inject(plan=plan)
    settings = url_settings(tmp_path / "data", clean_chain.url)
    assert _run(settings) == 0
    assert {(t, n) for t, n, _ in fake.fired} == set(plan), f"not every injected failure fired: {fake.fired}"
    assert_exact(settings)
    assert_no_duplicates(settings)
    assert assert_complete_days_tile(settings) == DAYS
    _raw_counts_equal_truth(settings)
    log = (settings.data_dir / "backfill" / "monitor.log").read_text(encoding="utf-8")
    assert "❌ Error: insert into erc1155_transfers failed, retrying" in log


@pytest.mark.slow
def test_slow_store_only_slows_the_run(tmp_path, clean_chain, inject):
    fake = inject(delay=0.25)
    settings = url_settings(tmp_path / "data", clean_chain.url, stall_seconds=20)
    assert _run(settings) == 0
    assert fake.calls >= 8
    assert_exact(settings)
    assert_no_duplicates(settings)
    _raw_counts_equal_truth(settings)


@pytest.mark.slow
def test_store_that_stays_down_exits_4_with_the_reason_then_resume_is_exact(tmp_path, clean_chain, inject,
                                                                          monkeypatch, capsys):
    monkeypatch.setitem(Writer.__init__.__kwdefaults__, "retry_for", 1.5)
    fake = inject(down_after=4)
    settings = url_settings(tmp_path / "data", clean_chain.url)
    box: dict = {}
    assert _run(settings, box) == 4
    assert any(kind == "down" for _, _, kind in fake.fired)
    reason = box["sup"].stop_reason or ""
    assert "store unavailable" in reason and "ClickHouse insert into" in reason, reason
    assert "injected: Connection refused" in reason, reason
    log = (settings.data_dir / "backfill" / "monitor.log").read_text(encoding="utf-8")
    assert "❌ Error: insert into" in log
    assert main(["status", "--data-dir", str(settings.data_dir)]) == 0  # what the operator sees
    assert "result: store unavailable" in capsys.readouterr().out
    # What the store already holds is consistent: no COMPLETE day with a gap, no duplicate.
    assert assert_complete_days_tile(settings) < DAYS
    assert_no_duplicates(settings)

    monkeypatch.setattr(Store, "insert_columns", ORIGINAL_INSERT)  # the store is back
    assert _run(settings) == 0
    assert_exact(settings)
    assert_no_duplicates(settings)
    assert assert_complete_days_tile(settings) == DAYS


@pytest.mark.parametrize("query", ["FROM {db}.backfill_checkpoint WHERE day_idx < %(n)s",
                                   "countIf(status = 'COMPLETE')"],
                         ids=["mirror recovery at start", "waiting for every day before the rebuild"])
def test_a_store_query_that_fails_once_does_not_crash_the_run(tmp_path, clean_chain, monkeypatch, query):
    original = Store.query
    failed = {"n": 0}

    async def flaky_query(self, sql, parameters=None):
        if query in sql and not failed["n"]:
            failed["n"] += 1
            raise StoreError("OperationalError: injected: Connection reset by peer")
        return await original(self, sql, parameters)

    monkeypatch.setattr(Store, "query", flaky_query)
    settings = url_settings(tmp_path / "data", clean_chain.url, no_rebuild=False)
    box: dict = {}
    try:
        code = _run(settings, box)
    except Exception as exc:
        code = f"uncaught {type(exc).__name__}: {exc}"
    assert failed["n"] == 1, "the query was never made: the case did not happen"
    reason = box["sup"].stop_reason if "sup" in box else None
    assert code == 0 or (code == 4 and "store" in (reason or "").lower()), (code, reason)
    if code == 0:
        assert_exact(settings)
