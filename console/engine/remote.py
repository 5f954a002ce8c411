"""A SupervisorAPI over the SQLite mirror: for `attach`, `status` and `screenshot`.

The engine publishes its snapshot into the mirror once a second and polls the `commands`
table; this class reads the one and writes the other, so an attached console drives a
headless run with the very same dashboard, and `status`/`screenshot` need no engine.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from console.engine.events import (
    DaySnapshot, EventRecord, GateResult, RebuildStep, RpcSnapshot, ShardSnapshot, Snapshot,
)
from console.engine.state import open_readonly, read_snapshot_body, send_command


def _date(v: Any) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


def _datetime(v: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(v) if v else None


def snapshot_from_dict(d: dict, *, read_only: bool) -> Snapshot:
    rpc = d["rpc"]
    return Snapshot(
        taken_at=_datetime(d["taken_at"]), engine_state=d["engine_state"],
        simulated_chain=d["simulated_chain"], read_only=read_only,
        start_date=_date(d["start_date"]), days_total=d["days_total"], days_done=d["days_done"],
        days_failed=d["days_failed"], logs_total=d["logs_total"], logs_per_s=d["logs_per_s"],
        eta_seconds=d["eta_seconds"], store=d["store"], store_healthy=d["store_healthy"],
        shards=tuple(ShardSnapshot(**{**s, "day": _date(s["day"])}) for s in d["shards"]),
        rpc=RpcSnapshot(**{**rpc, "error_history": tuple(rpc["error_history"])}),
        gates=tuple(GateResult(**{**g, "at": _datetime(g["at"])}) for g in d["gates"]),
        rebuild=tuple(RebuildStep(**{**r, "started_at": _datetime(r["started_at"])}) for r in d["rebuild"]),
        events=tuple(EventRecord(**{**e, "at": _datetime(e["at"])}) for e in d["events"]),
        days=tuple(DaySnapshot(**{**x, "day": _date(x["day"])}) for x in d["days"]),
        stall_seconds=d["stall_seconds"], stop_reason=d["stop_reason"], exit_code=d["exit_code"],
        extra=d.get("extra") or {},
    )


class RemoteSupervisor:
    """Reads the published snapshot; sends commands through the mirror's `commands` table."""

    def __init__(self, data_dir: Path, *, read_only: bool = False, live: bool = True) -> None:
        self.data_dir = data_dir
        self.read_only = read_only
        self.live = live  # False: a finished run (status/screenshot), commands make no sense
        self._cached: tuple[float, Snapshot] | None = None

    def published_at(self) -> float | None:
        conn = open_readonly(self.data_dir)
        if conn is None:
            return None
        try:
            got = read_snapshot_body(conn)
        finally:
            conn.close()
        return got[0] if got else None

    def snapshot(self) -> Snapshot:
        conn = open_readonly(self.data_dir)
        if conn is None:
            raise FileNotFoundError(f"no run state in {self.data_dir}")
        try:
            got = read_snapshot_body(conn)
        except sqlite3.DatabaseError:
            got = None
        finally:
            conn.close()
        if got is None:
            if self._cached:
                return self._cached[1]
            raise FileNotFoundError(f"no snapshot published in {self.data_dir} yet")
        at, body = got
        if self._cached is None or self._cached[0] != at:
            self._cached = (at, snapshot_from_dict(body, read_only=self.read_only))
        return self._cached[1]

    def _send(self, command: str, arg: int | None = None) -> None:
        if self.read_only:
            return
        send_command(self.data_dir, command, arg)

    def pause_shard(self, shard_id: int) -> None:
        self._send("pause", shard_id)

    def resume_shard(self, shard_id: int) -> None:
        self._send("resume", shard_id)

    def pause_all(self) -> None:
        self._send("pause_all")

    def resume_all(self) -> None:
        self._send("resume_all")

    def restart_shard(self, shard_id: int) -> None:
        self._send("restart", shard_id)

    def run_gates(self) -> None:
        self._send("gates")

    def abort(self) -> None:
        self._send("abort")

    def stop(self) -> None:
        self._send("stop")
