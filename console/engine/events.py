"""Immutable snapshot types: the only data that crosses from the engine to the UI.

The supervisor builds a fresh `Snapshot` on demand; the UI (or the headless status line, or
an attached console reading the SQLite mirror) only reads it. Everything is frozen and made
of plain values, so a snapshot can be handed to another thread or compared for diff updates
without locks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Mapping, Protocol

# Engine states, in the order a run moves through them.
ENGINE_STATES = (
    "starting", "running", "paused", "stopping", "gating", "waiting", "rebuilding",
    "done", "failed", "aborted", "stopped",
)
# Shard states.
SHARD_STATES = ("idle", "running", "paused", "stalled", "restarting", "done", "failed", "stopped")
DAY_STATUSES = ("PENDING", "CLAIMED", "COMPLETE", "FAILED")


@dataclass(frozen=True)
class ShardSnapshot:
    shard_id: int
    state: str
    epoch: int
    day_idx: int | None
    day: dt.date | None
    day_progress: float  # fraction of the current day's blocks covered, all streams, 0..1
    days_done: int
    days_owned: int
    logs_per_s: float
    heartbeat_age_s: float
    restarts: int
    errors: int
    last_error: str | None


@dataclass(frozen=True)
class RpcSnapshot:
    url: str  # redacted
    requests_per_s: float
    latency_ms: float
    calls_total: int
    getlogs_calls: int
    errors_by_class: Mapping[str, int]  # too_large / rate_limited / transient / fatal
    error_history: tuple[int, ...]  # errors per refresh interval, oldest first (sparkline)
    rate_limit_rps: float | None  # the current AIMD ceiling, None = unlimited
    learned_limits: Mapping[str, int | None]  # max_range / max_results
    healthy: bool


@dataclass(frozen=True)
class GateResult:
    name: str
    mode: str  # relaxed | strict
    value: float
    threshold: float
    comparator: str  # ">=", "<=", "=="
    passed: bool
    at: dt.datetime
    detail: str = ""


@dataclass(frozen=True)
class RebuildStep:
    index: int  # 1..4
    name: str
    state: str  # pending | running | done | failed | skipped
    started_at: dt.datetime | None = None
    seconds: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class EventRecord:
    at: dt.datetime
    level: str  # info | warn | error
    source: str  # operator | engine | monitor | gates | rebuild | shard-N
    message: str


@dataclass(frozen=True)
class DaySnapshot:
    day_idx: int
    day: dt.date
    shard_id: int  # owner by day_idx % shards
    status: str  # PENDING | CLAIMED | COMPLETE | FAILED
    start_block: int | None
    end_block: int | None
    covered: float  # fraction of (blocks x streams) in the coverage ledger, 0..1
    erc20_count: int
    erc1155_count: int
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Snapshot:
    taken_at: dt.datetime
    engine_state: str
    simulated_chain: bool
    read_only: bool
    start_date: dt.date
    days_total: int
    days_done: int
    days_failed: int
    logs_total: int
    logs_per_s: float
    eta_seconds: float | None
    store: str  # redacted DSN
    store_healthy: bool
    shards: tuple[ShardSnapshot, ...]
    rpc: RpcSnapshot
    gates: tuple[GateResult, ...] = ()
    rebuild: tuple[RebuildStep, ...] = ()
    events: tuple[EventRecord, ...] = ()
    days: tuple[DaySnapshot, ...] = ()
    stall_seconds: float = 300.0
    stop_reason: str | None = None
    exit_code: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


class SupervisorAPI(Protocol):
    """What the console may call. Commands never block: they queue work and return at once.

    The in-process `Supervisor` and the attached `RemoteSupervisor` (SQLite commands table)
    both implement it, so the same dashboard drives either.
    """

    read_only: bool

    def snapshot(self) -> Snapshot: ...
    def pause_shard(self, shard_id: int) -> None: ...
    def resume_shard(self, shard_id: int) -> None: ...
    def pause_all(self) -> None: ...
    def resume_all(self) -> None: ...
    def restart_shard(self, shard_id: int) -> None: ...
    def run_gates(self) -> None: ...
    def abort(self) -> None: ...
    def stop(self) -> None: ...
