"""Shard workers: claim a day -> resolve its blocks -> fetch every stream -> write -> complete.

Shard k of N owns the days with day_idx % N == k (the runbook's sharding) and takes them in
order; when it runs out it steals PENDING days from the shard with the most left. Every claim
gets a fresh claim_id and carries the shard's epoch: a restarted shard has a new epoch, and
the writer refuses to mark a day COMPLETE for a claim that is no longer current (fencing).

A day becomes COMPLETE only when, for every stream, the fetched sub-ranges tile
[start_block, end_block] exactly. Anything else leaves it FAILED with the reason, to be
requeued by the monitor - never "continues with 0 logs for that day".
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from console.engine import decode
from console.engine.errors import DayNotFinal, Fatal, InvalidResponse, RpcError
from console.engine.ranges import fetch_tiled
from console.engine.state import DayRecord
from console.engine.wire import RawLog

if TYPE_CHECKING:
    from console.engine.supervisor import EngineContext

DECODERS = {
    "erc20": ("erc20_transfers", decode.decode_erc20),
    "erc1155": ("erc1155_transfers", decode.decode_erc1155),
    "resolution": ("condition_resolutions", decode.decode_resolutions),
    "registration": ("token_registrations", decode.decode_registrations),
}


RATE_WINDOW = 10.0  # seconds of history behind a shard's logs/s


class ShardFatal(RuntimeError):
    """An error no retry fixes (auth, wrong chain, invalid params): the run must stop."""


@dataclass
class ShardRuntime:
    """Mutable per-shard state, read by the supervisor's snapshot builder."""

    shard_id: int
    epoch: int = 0
    state: str = "idle"
    day_idx: int | None = None
    blocks_total: int = 0
    blocks_done: int = 0
    heartbeat_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    errors: int = 0
    last_error: str | None = None
    logs: int = 0
    last_batch: str = ""
    rate_window: list[tuple[float, int]] = field(default_factory=list)
    first_logs_at: float | None = None

    def beat(self, batch: str | None = None) -> None:
        self.heartbeat_at = time.monotonic()
        if batch:
            self.last_batch = batch

    def add_logs(self, n: int) -> None:
        self.logs += n
        now = time.monotonic()
        if self.first_logs_at is None:
            self.first_logs_at = now
        self.rate_window.append((now, n))
        self._prune(now)

    def _prune(self, now: float) -> None:
        while self.rate_window and now - self.rate_window[0][0] > RATE_WINDOW:
            self.rate_window.pop(0)

    def logs_per_s(self) -> float:
        """Logs per second over the last RATE_WINDOW seconds (0 once the shard stops fetching)."""
        now = time.monotonic()
        self._prune(now)
        if not self.rate_window:
            return 0.0
        span = min(RATE_WINDOW, max(1.0, now - (self.first_logs_at or now)))
        return sum(n for _, n in self.rate_window) / span


class ShardWorker:
    def __init__(self, ctx: "EngineContext", runtime: ShardRuntime) -> None:
        self.ctx = ctx
        self.rt = runtime
        self.epoch = runtime.epoch
        self.log: logging.Logger = ctx.worker_logger(runtime.shard_id)
        self.resume = asyncio.Event()
        self.resume.set()

    # --- control --------------------------------------------------------------------------
    def pause(self) -> None:
        self.resume.clear()
        self.rt.state = "paused"

    def unpause(self) -> None:
        self.resume.set()
        if self.rt.state == "paused":
            self.rt.state = "running" if self.rt.day_idx is not None else "idle"

    async def checkpoint(self) -> None:
        """A pause / cancel point between sub-ranges."""
        if not self.resume.is_set():
            self.rt.state = "paused"
            await self.resume.wait()
            self.rt.beat()
            self.rt.state = "running"
        if self.ctx.stopping:
            raise asyncio.CancelledError()

    # --- main loop ------------------------------------------------------------------------
    async def run(self) -> None:
        self.rt.state = "idle"
        while not self.ctx.stopping:
            await self.checkpoint()
            record = self.ctx.claim_next(self.rt.shard_id, self.epoch)
            if record is None:
                if self.ctx.waiting_for_retries(self.rt.shard_id):
                    self.rt.state = "idle"
                    self.rt.beat()
                    await asyncio.sleep(min(1.0, self.ctx.settings.monitor_interval))
                    continue
                self.rt.state = "done"
                self.rt.day_idx = None
                return
            await self._run_day(record)

    async def _run_day(self, record: DayRecord) -> None:
        self.rt.state = "running"
        self.rt.day_idx = record.day_idx
        self.rt.blocks_done = 0
        self.rt.blocks_total = 0
        self.rt.beat(f"day {record.day_idx} claimed")
        await self.ctx.persist_day(record)
        started = time.monotonic()
        self.log.info("▶ day %d (%s) claimed, epoch %d, attempt %d",
                      record.day_idx, record.day, self.epoch, record.attempts)
        try:
            erc20_rows, erc1155_rows, calls = await self._fetch_day(record)
        except asyncio.CancelledError:
            self.ctx.release_claim(record)
            raise
        except DayNotFinal as exc:
            await self._fail(record, str(exc), retry_in=max(60.0, self.ctx.settings.monitor_interval))
            return
        except Fatal as exc:
            await self._fail(record, f"fatal RPC error: {exc}")
            raise ShardFatal(str(exc)) from None
        except RpcError as exc:
            await self._fail(record, f"{exc.klass}: {exc}")
            return
        except Exception as exc:  # a bug or store failure: never silently skip the day
            await self._fail(record, f"{type(exc).__name__}: {exc}")
            if self.ctx.writer.failed is not None:
                raise
            return
        record.erc20_count, record.erc1155_count = erc20_rows, erc1155_rows
        record.last_error = None
        fence = lambda: self.ctx.claim_is_current(record, self.rt.shard_id, self.epoch)  # noqa: E731
        if await self.ctx.writer.complete_day(record, fence):
            self.ctx.mark_complete(record)
            seconds = time.monotonic() - started
            self.log.info("✅ day %d (%s) COMPLETE: %d erc20, %d erc1155 rows, blocks %d-%d, "
                          "%d getLogs calls, %.1fs", record.day_idx, record.day, erc20_rows,
                          erc1155_rows, record.start_block, record.end_block, calls, seconds)
        else:
            self.log.info("day %d: claim superseded (epoch %d fenced off); not marked complete",
                          record.day_idx, self.epoch)
        self.rt.day_idx = None
        self.rt.beat(f"day {record.day_idx} done")

    async def _fail(self, record: DayRecord, reason: str, retry_in: float | None = None) -> None:
        self.rt.errors += 1
        self.rt.last_error = reason[:300]
        self.log.error("❌ Error: day %d (%s) FAILED (attempt %d): %s",
                       record.day_idx, record.day, record.attempts, reason)
        await self.ctx.mark_failed(record, reason, self.rt.shard_id, self.epoch, retry_in)
        self.rt.day_idx = None
        self.rt.beat()

    # --- one day ----------------------------------------------------------------------------
    async def _fetch_day(self, record: DayRecord) -> tuple[int, int, int]:
        """Fetch every stream of the day concurrently (a TaskGroup: one failing stream cancels
        the others); returns (erc20 rows, erc1155 rows, getLogs calls) for the day."""
        ctx = self.ctx
        start, end = await ctx.resolve_day(record)
        streams = ctx.profile.streams(record.day, ctx.settings.usdc_scope)
        self.rt.blocks_total = (end - start + 1) * len(streams)
        day = _DayTally(both_filters=_overlap(streams))
        try:
            async with asyncio.TaskGroup() as group:
                for stream in streams:
                    group.create_task(self._fetch_stream(record, stream, start, end, day))
        except BaseExceptionGroup as group_error:
            # Report the stream's own error (RpcError, Fatal, ...), not the group around it.
            raise _first_error(group_error) from None
        for name, ranges in day.tiles.items():
            gap = tiling_gap(ranges, start, end)
            if gap:
                raise RuntimeError(f"stream {name} does not tile blocks {start}-{end}: {gap}")
        return day.erc20_rows, day.erc1155_rows, day.calls

    async def _fetch_stream(self, record: DayRecord, stream, start: int, end: int,
                            day: "_DayTally") -> None:
        ctx = self.ctx
        table, decoder = DECODERS[stream.kind]
        planner = ctx.planner_for(stream.name, record.day_idx)
        addresses = set(stream.addresses)
        params = stream.filter_params()
        tiles = day.tiles[stream.name] = []
        async for a, b, logs in fetch_tiled(ctx.rpc, start, end, params["address"],
                                            params["topics"], planner):
            columns = await self._decode(decoder, logs, record.day_idx, a, b, addresses, params)
            received = len(logs)
            del logs  # the parsed response is done with: not held through the insert wait
            n = len(next(iter(columns.values()), ())) if columns else 0
            if stream.kind == "erc20" and n:
                columns = _drop_seen(columns, day.erc20_shared, day.both_filters)
                n = len(columns["tx_hash"])
                day.erc20_rows += n
            elif stream.kind == "erc1155":
                day.erc1155_rows += n
            if n:
                await ctx.writer.put_rows(table, columns)
            await ctx.writer.put_ledger(record.day_idx, record.claim_id, stream.name, a, b, received)
            tiles.append((a, b))
            self.rt.blocks_done += b - a + 1
            self.rt.add_logs(received)
            ctx.note_progress()
            self.rt.beat(f"day {record.day_idx} {stream.name} {a}-{b}")
            await self.checkpoint()
        ctx.calls_by_stream[stream.name] = ctx.calls_by_stream.get(stream.name, 0) + planner.calls
        day.calls += planner.calls

    async def _decode(self, decoder: Callable, logs: list[RawLog], day_idx: int, a: int, b: int,
                      addresses: set[str], params: dict) -> dict:
        """Decode one response; an invalid one is fetched again, never half-stored."""
        rpc = self.ctx.rpc
        for attempt in range(4):
            try:
                missing = decode.missing_timestamps(logs)
                timestamps = await rpc.block_timestamps(missing) if missing else {}
                t0 = time.perf_counter()
                columns = decoder(logs, day_idx=day_idx, from_block=a, to_block=b,
                                  addresses=addresses, timestamps=timestamps)
                self.ctx.decode_seconds += time.perf_counter() - t0
                return columns
            except InvalidResponse as exc:
                rpc.stats.invalid_responses += 1
                self.log.warning("❌ Error: invalid response for blocks %d-%d (%s), refetching", a, b, exc)
                if attempt == 3:
                    raise
                logs = await rpc.get_logs(a, b, params["address"], params["topics"])
        raise AssertionError("unreachable")


@dataclass
class _DayTally:
    """What the concurrent stream fetchers of one day share."""

    both_filters: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())  # _overlap
    erc20_shared: set[tuple[str, int]] = field(default_factory=set)  # keys of rows in both
    erc20_rows: int = 0
    erc1155_rows: int = 0
    calls: int = 0  # eth_getLogs calls, failed ones included
    tiles: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def _first_error(group: BaseExceptionGroup) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            exc = _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


def _overlap(streams) -> tuple[frozenset[str], frozenset[str]]:
    """(senders, receivers): a USDC transfer from one of `senders` to one of `receivers` matches
    both the day's `from` filter (topic 1) and its `to` filter (topic 2), and comes twice.
    Empty when fewer than two ERC-20 filters are fetched (usdc_scope=all): nothing comes twice."""
    erc20 = [s for s in streams if s.kind == "erc20"]

    def side(position: int) -> frozenset[str]:
        out = set()
        for s in erc20:
            wanted = s.topics[position] if len(s.topics) > position else None
            for t in (wanted,) if isinstance(wanted, str) else wanted or ():
                out.add("0x" + t[-40:].lower())
        return frozenset(out)

    if len(erc20) < 2:
        return frozenset(), frozenset()
    return side(1), side(2)


def _drop_seen(columns: dict[str, list], shared: set[tuple[str, int]],
               both: tuple[frozenset[str], frozenset[str]]) -> dict[str, list]:
    """USDC transfers between two Polymarket contracts match both the `from` and the `to`
    filter; keep each (tx_hash, log_index) once so the day's count is exact. Only those
    transfers are remembered in `shared` (a handful a day, not every row: a day-long set of
    every key kept ~20K strings per day alive through the backfill's churn)."""
    senders, receivers = both
    keep = []
    for i, (sender, receiver) in enumerate(zip(columns["from_address"], columns["to_address"])):
        if sender in senders and receiver in receivers:
            key = (columns["tx_hash"][i], columns["log_index"][i])
            if key in shared:
                continue
            shared.add(key)
        keep.append(i)
    if len(keep) == len(columns["tx_hash"]):
        return columns
    return {k: [v[i] for i in keep] for k, v in columns.items()}


def tiling_gap(ranges: list[tuple[int, int]], start: int, end: int) -> str | None:
    """None when the ranges tile [start, end] exactly; else a description of the first flaw."""
    pos = start
    for a, b in sorted(ranges):
        if a != pos:
            return f"{'gap' if a > pos else 'overlap'} at block {pos}"
        if b < a:
            return f"empty range {a}-{b}"
        pos = b + 1
    if pos != end + 1:
        return f"gap from block {pos} to {end}"
    return None
