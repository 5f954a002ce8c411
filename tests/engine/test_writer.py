"""The writer's back-pressure is counted in rows: a slow store holds producers, not memory."""

import asyncio
import contextlib
import time
import types

import pytest

from console.engine.state import StateDB
from console.engine.store import Store
from console.engine.writer import Writer


def _rows(n: int, first: int) -> dict[str, list]:
    return {"version": list(range(first, first + n))}


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def parts(tmp_path):
    """A real embedded store and state mirror, closed after the test."""
    store = await Store.open(f"chdb://{tmp_path / 'ch'}")
    state = await StateDB.open(tmp_path)
    yield store, state
    await state.close()
    await store.close()


@contextlib.asynccontextmanager
async def running(store, state, **kw):
    """A Writer with its run task, stopped however the test ends."""
    writer = Writer(store, state, **kw)
    run = asyncio.ensure_future(writer.run())
    try:
        yield writer
    finally:
        await writer.stop()
        await asyncio.wait_for(run, 10)


async def test_put_rows_waits_while_the_store_holds_the_row_budget(parts):
    store, state = parts
    inserting = asyncio.Event()
    release = asyncio.Event()
    real_insert = store.insert_columns

    async def slow_insert(table, columns, **kw):
        inserting.set()
        await release.wait()
        return await real_insert(table, columns, **kw)

    store.insert_columns = slow_insert
    async with running(store, state, max_rows=100, max_pending_rows=150) as writer:
        try:
            await writer.put_rows("schema_version", _rows(100, 1000))
            await asyncio.wait_for(inserting.wait(), 10)  # the first batch is in the (stuck) store
            second = asyncio.ensure_future(writer.put_rows("schema_version", _rows(100, 2000)))
            await _settle()
            assert not second.done() and writer.pending_rows == 100
            release.set()
            await asyncio.wait_for(second, 10)
            await writer.drain()
            assert writer.pending_rows == 0
            got = await store.query("SELECT count() FROM {db}.schema_version WHERE version >= 1000")
            assert got[0][0] == 200
        finally:
            release.set()


async def test_a_batch_larger_than_the_budget_still_goes_through(parts):
    store, state = parts
    async with running(store, state, max_rows=10, max_pending_rows=5) as writer:
        await asyncio.wait_for(writer.put_rows("schema_version", _rows(50, 5000)), 10)
        await writer.drain()
        got = await store.query("SELECT count() FROM {db}.schema_version WHERE version >= 5000")
        assert got[0][0] == 50


async def test_flushes_hand_freed_memory_back_at_most_every_release_interval(parts, monkeypatch):
    """During a backfill the writer is what runs steadily, so it releases memory (Store.release_memory)
    after a flush — throttled: not after every flush."""
    import console.engine.writer as writer_mod

    store, state = parts
    released = []

    clock = [1000.0]  # the writer's clock only: asyncio keeps the real one
    monkeypatch.setattr(writer_mod, "time", types.SimpleNamespace(
        monotonic=lambda: clock[0], perf_counter=time.perf_counter))

    async def release_memory():
        released.append(clock[0])

    store.release_memory = release_memory
    async with running(store, state, max_rows=10) as writer:
        for step in range(6):  # flushes 0.5 s apart (injected clock): 3 s in all
            await writer.put_rows("schema_version", _rows(10, 7000 + 10 * step))
            await writer.drain()
            clock[0] += 0.5
        assert writer.flushes >= 6
        assert released and len(released) <= 2, released  # >= RELEASE_SECONDS apart
        assert all(b - a >= writer_mod.RELEASE_SECONDS for a, b in zip(released, released[1:]))

