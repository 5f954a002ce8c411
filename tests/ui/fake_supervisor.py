"""A `SupervisorAPI` over a mutable list of snapshots that records every command.

`make_snapshot()` builds a deterministic, realistic snapshot (8 shards, 1048 days by
default) for tests, the golden screenshot and the refresh bench.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from console.engine.events import (
    DaySnapshot, EventRecord, GateResult, RebuildStep, RpcSnapshot, ShardSnapshot, Snapshot,
)

T0 = dt.datetime(2024, 5, 17, 12, 0, 0, tzinfo=dt.timezone.utc)
START = dt.date(2021, 6, 1)

_SHARD_STATES = ("running", "running", "paused", "stalled", "running", "restarting", "done", "failed")


def make_shards(n: int = 8, days_total: int = 1048, *, stall_seconds: float = 300.0) -> tuple[ShardSnapshot, ...]:
    shards = []
    for i in range(n):
        owned = len(range(i, days_total, n))
        state = _SHARD_STATES[i % len(_SHARD_STATES)]
        done = owned if state == "done" else (owned * (3 + i)) // 11
        day_idx = None if state == "done" else i + n * done
        hb = {"stalled": stall_seconds * 1.4, "paused": stall_seconds * 0.6}.get(state, 2.0 + i)
        shards.append(ShardSnapshot(
            shard_id=i, state=state, epoch=1 + (i == 5), day_idx=day_idx,
            day=None if day_idx is None else START + dt.timedelta(days=day_idx),
            day_progress=0.0 if day_idx is None else ((i * 37) % 100) / 100.0,
            days_done=done, days_owned=owned,
            logs_per_s=0.0 if state in ("paused", "done", "failed", "stalled") else 1200.0 + 310.0 * i,
            heartbeat_age_s=hb, restarts=1 if i == 5 else 0, errors=3 if i in (3, 7) else 0,
            last_error=(
                "eth_getLogs: query returned more than 10000 results (too_large)" if i == 3
                else "fatal: block 51234567 hash mismatch after reorg" if i == 7 else None
            ),
        ))
    return tuple(shards)


def make_days(shards: tuple[ShardSnapshot, ...], days_total: int) -> tuple[DaySnapshot, ...]:
    n = len(shards)
    days = []
    for idx in range(days_total):
        sh = shards[idx % n]
        k = idx // n
        if k < sh.days_done:
            status, cov = "COMPLETE", 1.0
        elif idx == sh.day_idx:
            status, cov = ("FAILED" if sh.state == "failed" else "CLAIMED"), sh.day_progress
        else:
            status, cov = "PENDING", 0.0
        first = 15_000_000 + idx * 43_200
        days.append(DaySnapshot(
            day_idx=idx, day=START + dt.timedelta(days=idx), shard_id=sh.shard_id, status=status,
            start_block=first if status != "PENDING" else None,
            end_block=first + 43_199 if status != "PENDING" else None,
            covered=cov, erc20_count=int(9000 + (idx * 7919) % 5000) if cov else 0,
            erc1155_count=int(4000 + (idx * 104729) % 3000) if cov else 0,
            attempts=(2 if status == "FAILED" else 1) if status != "PENDING" else 0,
            last_error=sh.last_error if status == "FAILED" else None,
        ))
    return tuple(days)


def make_snapshot(
    *, shards: int = 8, days_total: int = 1048, taken_at: dt.datetime = T0,
    engine_state: str = "running", with_days: bool = True, **overrides: Any,
) -> Snapshot:
    sh = make_shards(shards, days_total)
    days_done = sum(s.days_done for s in sh)
    rpc = RpcSnapshot(
        url="https://polygon-rpc.example/v2/***", requests_per_s=38.5, latency_ms=142.0,
        calls_total=184_223, getlogs_calls=171_904,
        errors_by_class={"too_large": 41, "rate_limited": 12, "transient": 5, "fatal": 0},
        error_history=(0, 0, 1, 0, 2, 5, 3, 0, 0, 1, 0, 0, 4, 8, 2, 0, 0, 0, 1, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0),
        rate_limit_rps=40.0, learned_limits={"max_range": 2000, "max_results": 10_000}, healthy=True,
    )
    gates = (
        GateResult("coverage", "strict", 0.9981, 1.0, ">=", False, T0 - dt.timedelta(minutes=12),
                   "2 days short of full coverage"),
        GateResult("no_gaps", "strict", 0, 0, "==", True, T0 - dt.timedelta(minutes=12)),
        GateResult("dup_ratio", "relaxed", 0.0003, 0.001, "<=", True, T0 - dt.timedelta(minutes=12)),
        GateResult("rpc_vs_store", "relaxed", 1_204_332, 1_204_332, "==", True, T0 - dt.timedelta(minutes=12)),
    )
    rebuild = (
        RebuildStep(1, "stage_transfers", "done", T0 - dt.timedelta(minutes=30), 84.2),
        RebuildStep(2, "positions", "done", T0 - dt.timedelta(minutes=28), 311.0),
        RebuildStep(3, "pnl_daily", "running", T0 - dt.timedelta(minutes=3), None, "day 612/1048"),
        RebuildStep(4, "swap_views", "pending"),
    )
    events = tuple(
        EventRecord(T0 - dt.timedelta(seconds=10 * (12 - k)), lvl, src, msg)
        for k, (lvl, src, msg) in enumerate([
            ("info", "engine", "run started: 8 shards, 1048 days from 2021-06-01"),
            ("info", "monitor", "rpc learned max_range=2000 (too_large backoff)"),
            ("warn", "shard-3", "eth_getLogs: query returned more than 10000 results (too_large)"),
            ("info", "operator", "pause shard #2 (console)"),
            ("info", "shard-2", "paused"),
            ("warn", "monitor", "shard #3 heartbeat 420s > stall 300s: stalled"),
            ("info", "shard-5", "restarting (epoch 2)"),
            ("error", "shard-7", "fatal: block 51234567 hash mismatch after reorg"),
            ("info", "gates", "relaxed gates: 3/4 pass"),
            ("info", "rebuild", "step 3 pnl_daily started"),
        ])
    )
    snap = Snapshot(
        taken_at=taken_at, engine_state=engine_state, simulated_chain=True, read_only=False,
        start_date=START, days_total=days_total, days_done=days_done, days_failed=1,
        logs_total=48_213_577, logs_per_s=sum(s.logs_per_s for s in sh), eta_seconds=5_430.0,
        store="clickhouse://default:***@localhost:8123/polymarket", store_healthy=True,
        shards=sh, rpc=rpc, gates=gates, rebuild=rebuild, events=events,
        days=make_days(sh, days_total) if with_days else (), stall_seconds=300.0,
    )
    return dataclasses.replace(snap, **overrides) if overrides else snap


class FakeSupervisor:
    """SupervisorAPI over `self.snapshots`; `snapshot()` serves the current one.

    Commands are recorded in `self.commands` as (name, *args). Tests move the world with
    `push()` / `update_shard()`.
    """

    def __init__(self, snapshots: list[Snapshot] | Snapshot | None = None, *, read_only: bool = False) -> None:
        if snapshots is None:
            snapshots = [make_snapshot()]
        if isinstance(snapshots, Snapshot):
            snapshots = [snapshots]
        self.snapshots: list[Snapshot] = list(snapshots)
        self.index = 0
        self.read_only = read_only
        self.commands: list[tuple[Any, ...]] = []
        self.snapshot_calls = 0

    # -- world -------------------------------------------------------------------------
    @property
    def current(self) -> Snapshot:
        return self.snapshots[self.index]

    def push(self, snapshot: Snapshot) -> Snapshot:
        self.snapshots.append(snapshot)
        self.index = len(self.snapshots) - 1
        return snapshot

    def update(self, **changes: Any) -> Snapshot:
        return self.push(dataclasses.replace(self.current, **changes))

    def update_shard(self, shard_id: int, **changes: Any) -> Snapshot:
        shards = tuple(
            dataclasses.replace(s, **changes) if s.shard_id == shard_id else s
            for s in self.current.shards
        )
        return self.update(shards=shards)

    # -- SupervisorAPI -------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        self.snapshot_calls += 1
        return self.current

    def _record(self, *cmd: Any) -> None:
        self.commands.append(cmd)

    def pause_shard(self, shard_id: int) -> None:
        self._record("pause_shard", shard_id)

    def resume_shard(self, shard_id: int) -> None:
        self._record("resume_shard", shard_id)

    def pause_all(self) -> None:
        self._record("pause_all")

    def resume_all(self) -> None:
        self._record("resume_all")

    def restart_shard(self, shard_id: int) -> None:
        self._record("restart_shard", shard_id)

    def run_gates(self) -> None:
        self._record("run_gates")

    def abort(self) -> None:
        self._record("abort")

    def stop(self) -> None:
        self._record("stop")
