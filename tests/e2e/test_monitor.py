"""The watchdog: a shard whose request hangs is restarted with a new epoch, and the old epoch
can no longer mark its day COMPLETE."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time


from console.devchain.process import spawn
from console.devchain.world import build_world
from console.engine.state import DayRecord, StateDB
from console.engine.store import Store
from console.engine.writer import Writer
from tests.e2e.helpers import engine_settings, query, run, stored_rows, truth
from tests.e2e.proxy import FaultProxy, get_logs_range

WORLD = build_world("small", seed=1)


def test_hung_shard_is_restarted_and_its_day_completes_under_the_new_epoch(tmp_path):
    stall, interval = 2.0, 0.5
    day = 1
    first, last = WORLD.day_bounds(day)

    def in_day(payload):
        rng = get_logs_range(payload)
        return bool(rng) and first <= rng[0] <= last

    with spawn(density="small", profile="clean", seed=1) as chain, FaultProxy(chain.url) as proxy:
        proxy.hangs.append((in_day, 30.0))
        settings = engine_settings(tmp_path / "data", rpc_url=proxy.url,
                                   start_date=WORLD.start_date.isoformat(), days=WORLD.days,
                                   stall_seconds=stall, monitor_interval=interval, rpc_timeout=60)
        code = run(settings)
        log = (settings.data_dir / "backfill" / "monitor.log").read_text()
        assert code == 0, log
        assert proxy.hung_at, "the hang never happened"

    assert re.search(r"shard 1 stalled", log), log
    assert re.search(r"shard 1 restarted .* new epoch 2", log), log
    # Restarted within stall_seconds + monitor_interval of the hang (plus scheduling slack).
    stamp = re.search(r"^(\S+) ↻ shard 1 restarted", log, re.M).group(1)
    restarted = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    hung = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=time.monotonic() - proxy.hung_at[0])
    assert (restarted - hung).total_seconds() <= stall + interval + 2.0

    final = query(settings, f"SELECT status, epoch, worker_id FROM backfill_checkpoint WHERE day_idx = {day}")
    assert final == [("COMPLETE", 2, 1)]
    for table in ("erc20_transfers", "erc1155_transfers"):
        assert stored_rows(settings, table) == truth(settings, table, "polymarket")


async def test_a_fenced_off_claim_cannot_mark_its_day_complete(tmp_path):
    """The writer asks the fence after the data is stored; a superseded claim gets False."""
    store = await Store.open(f"chdb://{tmp_path / 'ch'}", "backfill")
    state = await StateDB.open(tmp_path)
    writer = Writer(store, state, flush_seconds=0.05)
    task = asyncio.ensure_future(writer.run())
    try:
        record = DayRecord(0, dt.date(2024, 1, 1), 0, 99, "CLAIMED", 0, 1, 111, 5, 6, 1, None, 0, 0)
        await state.save_day(record)
        assert await writer.complete_day(record, fence=lambda: False) is False
        rows = await store.query("SELECT status FROM {db}.backfill_checkpoint WHERE day_idx = 0")
        assert rows == []
        assert [d.status for d in await state.days()] == ["CLAIMED"]
        assert await writer.complete_day(record, fence=lambda: True) is True
        rows = await store.query("SELECT status, claim_id FROM {db}.backfill_checkpoint WHERE day_idx = 0")
        assert rows == [("COMPLETE", 111)]
        assert [d.status for d in await state.days()] == ["COMPLETE"]
    finally:
        await writer.stop()
        await task
        await state.close()
        await store.close()
