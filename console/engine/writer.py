"""The single writer: batches rows from every shard into large ClickHouse inserts.

Why one writer: chDB is one in-process engine on one thread, and ClickHouse likes few large
inserts over many small ones. Shards hand over column-oriented batches through a queue, and
back-pressure is counted in rows, not queue items: one item can be a whole 10K-log response (or
a 40K-log day on an uncapped provider), so an item bound alone let ~1M decoded rows (~1 GB of
Python objects) wait when the store was slower than the RPC. `put_rows` waits while more than
`max_pending_rows` rows are queued or in the unflushed batch.

Ordering is the no-loss contract (DESIGN §6.4): within a flush, data tables are inserted
first, then coverage_ledger rows, then checkpoint rows. A sub-range's ledger row is queued
after its data rows, so it can never land before them; a day's COMPLETE checkpoint is
written only after a flush that includes all of its ledger rows, and only if the claim
that fetched it is still the day's current claim (fencing).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from console.engine.state import DayRecord, StateDB
from console.engine.store import Store, StoreError

# After a flush, hand freed memory back to the OS at most this often (Store.release_memory):
# during a backfill chDB itself holds ~10 MB, the rest of the engine's RSS is what the Python
# side and jemalloc keep of freed buffers. Every 2 s on a 200-day run: backfill-phase RSS mean
# 673 -> 632 MB, peak 811 -> 735 MB (a jemalloc purge and a malloc_trim each time).
RELEASE_SECONDS = 2.0
LEDGER_COLUMNS = ("day_idx", "claim_id", "stream", "from_block", "to_block", "log_count")
DATA_ORDER = ("erc20_transfers", "erc1155_transfers", "condition_resolutions", "token_registrations",
              "day_blocks_versions")


class WriterFailed(RuntimeError):
    """The store stayed down longer than the retry bound; the run must stop (exit 4)."""


@dataclass
class _Complete:
    record: DayRecord
    fence: Callable[[], bool]
    done: asyncio.Future


@dataclass
class _Batch:
    tables: dict[str, dict[str, list]] = field(default_factory=dict)
    rows: int = 0
    ledger: list[tuple[int, int, str, int, int, int]] = field(default_factory=list)
    checkpoints: list[DayRecord] = field(default_factory=list)
    completes: list[_Complete] = field(default_factory=list)
    heartbeats: list[dict] = field(default_factory=list)

    def add_rows(self, table: str, columns: dict[str, list]) -> None:
        have = self.tables.get(table)
        if have is None:
            self.tables[table] = {k: list(v) for k, v in columns.items()}
        else:
            for k, v in columns.items():
                have[k].extend(v)
        self.rows += len(next(iter(columns.values()), ()))

    def empty(self) -> bool:
        return not (self.tables or self.ledger or self.checkpoints or self.completes or self.heartbeats)


def checkpoint_row(d: DayRecord) -> dict[str, Any]:
    return {
        "day_idx": d.day_idx, "day": d.day, "start_block": d.start_block or 0,
        "end_block": d.end_block or 0, "status": d.status, "worker_id": d.worker_id or 0,
        "epoch": d.epoch, "claim_id": d.claim_id, "erc20_count": d.erc20_count,
        "erc1155_count": d.erc1155_count, "attempts": d.attempts, "last_error": d.last_error or "",
        "updated_at": dt.datetime.now(dt.timezone.utc),
    }


class Writer:
    def __init__(self, store: Store, state: StateDB, *, max_rows: int = 100_000,
                 flush_seconds: float = 0.5, queue_items: int = 128, max_pending_rows: int = 250_000,
                 retry_for: float = 300.0,
                 logger: logging.Logger | None = None,
                 on_committed: Callable[[DayRecord], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.state = state
        self.max_rows = max_rows
        self.flush_seconds = flush_seconds
        self.retry_for = retry_for
        self.logger = logger
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_items)
        self.max_pending_rows = max_pending_rows
        self.pending_rows = 0  # handed over by put_rows and not yet flushed
        self._room = asyncio.Condition()
        self.failed: BaseException | None = None
        self.rows_written = 0
        self.flushes = 0
        self.insert_seconds = 0.0
        self._released_at = time.monotonic()

    # --- producers (shards) -------------------------------------------------------------------
    async def put_rows(self, table: str, columns: dict[str, list]) -> None:
        """Queue rows; waits while the writer already holds `max_pending_rows` (one oversized
        batch alone is let through, or it could never go)."""
        self._check()
        n = len(next(iter(columns.values()), ()))
        async with self._room:
            await self._room.wait_for(lambda: self.failed is not None or self.pending_rows == 0
                                      or self.pending_rows + n <= self.max_pending_rows)
        self._check()
        self.pending_rows += n
        await self.queue.put(("rows", table, columns))

    async def _release_rows(self, n: int) -> None:
        async with self._room:
            self.pending_rows -= n
            self._room.notify_all()

    async def put_ledger(self, day_idx: int, claim_id: int, stream: str, a: int, b: int, n: int) -> None:
        self._check()
        await self.queue.put(("ledger", (day_idx, claim_id, stream, a, b, n)))

    async def put_checkpoint(self, record: DayRecord) -> None:
        """A CLAIMED / FAILED / PENDING version of a day for ClickHouse (SQLite is already saved)."""
        self._check()
        await self.queue.put(("checkpoint", DayRecord(**record.__dict__)))

    async def put_heartbeats(self, rows: list[dict]) -> None:
        self._check()
        await self.queue.put(("heartbeats", rows))

    async def complete_day(self, record: DayRecord, fence: Callable[[], bool]) -> bool:
        """Mark a day COMPLETE once everything queued before it is stored. False if fenced off."""
        self._check()
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(("complete", _Complete(DayRecord(**record.__dict__), fence, fut)))
        return await fut

    async def drain(self) -> None:
        """Wait until everything queued so far is written."""
        self._check()
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put(("barrier", fut))
        await fut

    def _check(self) -> None:
        if self.failed is not None:
            raise WriterFailed(str(self.failed))

    # --- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        batch = _Batch()
        barriers: list[asyncio.Future] = []
        deadline = None
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout) if timeout is not None \
                        else await self.queue.get()
                except asyncio.TimeoutError:
                    item = None
                if item is not None:
                    kind = item[0]
                    if kind == "stop":
                        await self._flush(batch)
                        self._release(barriers)
                        return
                    if kind == "rows":
                        batch.add_rows(item[1], item[2])
                    elif kind == "ledger":
                        batch.ledger.append(item[1])
                    elif kind == "checkpoint":
                        batch.checkpoints.append(item[1])
                    elif kind == "heartbeats":
                        batch.heartbeats.extend(item[1])
                    elif kind == "complete":
                        batch.completes.append(item[1])
                    elif kind == "barrier":
                        barriers.append(item[1])
                    if deadline is None:
                        deadline = time.monotonic() + self.flush_seconds
                urgent = barriers or batch.rows >= self.max_rows or (
                    batch.completes and self.queue.empty())
                if urgent or (deadline is not None and time.monotonic() >= deadline):
                    await self._flush(batch)
                    await self._release_rows(batch.rows)
                    batch = _Batch()
                    deadline = None
                    self._release(barriers)
                    barriers = []
        except BaseException as exc:
            self.failed = exc if not isinstance(exc, asyncio.CancelledError) else RuntimeError("writer stopped")
            for c in batch.completes:
                if not c.done.done():
                    c.done.set_exception(WriterFailed(str(self.failed)))
            for f in barriers:
                if not f.done():
                    f.set_exception(WriterFailed(str(self.failed)))
            self._fail_waiters()
            async with self._room:
                self._room.notify_all()  # producers waiting for room see `failed` and raise
            raise

    def _fail_waiters(self) -> None:
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item[0] == "complete" and not item[1].done.done():
                item[1].done.set_exception(WriterFailed(str(self.failed)))
            elif item[0] == "barrier" and not item[1].done():
                item[1].set_exception(WriterFailed(str(self.failed)))

    @staticmethod
    def _release(barriers: list[asyncio.Future]) -> None:
        for f in barriers:
            if not f.done():
                f.set_result(None)

    async def stop(self) -> None:
        if self.failed is None:
            await self.queue.put(("stop",))

    # --- flush --------------------------------------------------------------------------------
    async def _insert(self, table: str, columns: dict[str, list]) -> None:
        """Insert with retries; the same dedup token makes a retry after a lost ack harmless."""
        token = uuid.uuid4().hex
        started = time.monotonic()
        delay = 0.2
        while True:
            try:
                t0 = time.perf_counter()
                await self.store.insert_columns(table, columns, dedup_token=token)
                self.insert_seconds += time.perf_counter() - t0
                return
            except StoreError as exc:
                if time.monotonic() - started > self.retry_for:
                    raise WriterFailed(f"ClickHouse insert into {table} failing for "
                                       f"{self.retry_for:.0f}s: {exc}") from None
                if self.logger:
                    self.logger.warning("❌ Error: insert into %s failed, retrying: %s", table, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _flush(self, batch: _Batch) -> None:
        if batch.empty():
            return
        for table in DATA_ORDER:
            if table in batch.tables:
                await self._insert(table, batch.tables[table])
        for table, cols in batch.tables.items():
            if table not in DATA_ORDER:
                await self._insert(table, cols)
        self.rows_written += batch.rows
        now = dt.datetime.now(dt.timezone.utc)
        if batch.ledger:
            cols = {name: list(values) for name, values in zip(LEDGER_COLUMNS, zip(*batch.ledger))}
            cols["fetched_at"] = [now] * len(batch.ledger)
            await self._insert("coverage_ledger_versions", cols)
            await self.state.add_coverage(batch.ledger)
        if batch.heartbeats:
            await self._insert("worker_heartbeats_versions", _columns(batch.heartbeats))
        checkpoints = [checkpoint_row(d) for d in batch.checkpoints]
        accepted: list[_Complete] = []
        for c in batch.completes:
            if c.fence():
                c.record.status = "COMPLETE"
                accepted.append(c)
                checkpoints.append(checkpoint_row(c.record))
            else:
                c.done.set_result(False)
        if checkpoints:
            await self._insert("backfill_checkpoint_versions", _columns(checkpoints))
        for c in accepted:
            # Re-check the fence: a restart may have re-claimed the day while we inserted.
            if c.fence():
                await self.state.save_day(c.record)
                c.done.set_result(True)
            else:
                c.done.set_result(False)
        self.flushes += 1
        if time.monotonic() - self._released_at >= RELEASE_SECONDS:
            self._released_at = time.monotonic()
            await self.store.release_memory()


def _columns(rows: list[dict]) -> dict[str, list]:
    names = list(rows[0])
    return {n: [r[n] for r in rows] for n in names}
