"""The watchdog (DESIGN §6.7): restart stalled shards, requeue failed days, stop hopeless runs.

Every `monitor_interval`: a shard whose heartbeat has not advanced for `stall_seconds` is
cancelled and relaunched with a new epoch (its old claim is fenced off). Failed days are
retried by the shards themselves once their backoff expires (the monitor logs the requeue).
The run stops with exit 4 when every shard keeps stalling through restarts, or when the RPC
has not answered successfully for longer than `unreachable_after`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.engine.supervisor import Supervisor

MAX_FRUITLESS_RESTARTS = 3


class Monitor:
    def __init__(self, sup: "Supervisor") -> None:
        self.sup = sup
        self.settings = sup.settings
        self.log = sup.monitor_log
        # restarts of a shard since it last completed a day
        self.fruitless: dict[int, int] = {}
        self._done_seen: dict[int, int] = {}
        self._requeued: set[tuple[int, int]] = set()
        self.started = time.monotonic()

    @property
    def unreachable_after(self) -> float:
        return max(self.settings.stall_seconds, 120.0)

    async def run(self) -> None:
        self.log.info("monitor started: stall %.0fs, interval %.0fs", self.settings.stall_seconds,
                      self.settings.monitor_interval)
        while True:
            await asyncio.sleep(self.settings.monitor_interval)
            await self.check()

    async def check(self) -> None:
        sup = self.sup
        now = time.monotonic()
        stalled = []
        for sid, rt in list(sup.runtimes.items()):
            done = sum(1 for d in sup.days.values() if d.status == "COMPLETE" and d.worker_id == sid)
            if done > self._done_seen.get(sid, 0):
                self._done_seen[sid] = done
                self.fruitless[sid] = 0
            if rt.state not in ("running", "idle"):
                continue
            age = now - rt.heartbeat_at
            if age >= self.settings.stall_seconds:
                stalled.append(sid)
                self.fruitless[sid] = self.fruitless.get(sid, 0) + 1
                self.log.warning("❌ Error: shard %d stalled: no heartbeat for %.0fs (day %s); restarting",
                                 sid, age, rt.day_idx)
                rt.state = "stalled"
                sup.spawn_bg(sup._restart(sid, f"stalled {age:.0f}s"))
        active = [sid for sid, rt in sup.runtimes.items() if rt.state not in ("done", "failed")]
        if active and all(self.fruitless.get(s, 0) >= MAX_FRUITLESS_RESTARTS for s in active):
            reason = (f"all shards stalled: {len(active)} shard(s) restarted "
                      f"{MAX_FRUITLESS_RESTARTS} times without completing a day")
            self.log.error("❌ Error: %s; stopping the run", reason)
            sup.fail(4, reason)
            return
        self._check_rpc(now)
        self._log_requeues()

    def _check_rpc(self, now: float) -> None:
        stats = self.sup.rpc.stats
        last = stats.last_success if stats.last_success is not None else self.started
        silent = now - last
        busy = any(rt.state == "running" for rt in self.sup.runtimes.values())
        if busy and silent > self.unreachable_after:
            reason = f"RPC unreachable: no successful response for {silent:.0f}s"
            self.log.error("❌ Error: %s; stopping the run", reason)
            self.sup.fail(4, reason)

    def _log_requeues(self) -> None:
        now = time.time()
        for d in self.sup.days.values():
            key = (d.day_idx, d.attempts)
            if d.status == "FAILED" and d.next_attempt_at <= now and key not in self._requeued:
                self._requeued.add(key)
                self.log.info("↺ day %d (%s) requeued after attempt %d: %s", d.day_idx, d.day,
                              d.attempts, d.last_error)
                self.sup.event("warn", "monitor", f"day {d.day_idx} requeued (attempt {d.attempts + 1} next)")
