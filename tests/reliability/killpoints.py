"""Run the real CLI with one kill point armed: `python -m tests.reliability.killpoints SPEC ARGS...`.

SPEC is JSON. The child SIGKILLs itself (no cleanup, no flush: a power cut) at an exact place
in the engine, so a kill test can name where it landed instead of hoping a timer hit it:

  {"op": "insert", "table": T, "status": S?, "nth": k, "when": W}
      the k-th Store.insert_columns into table T (whose `status` column holds S, if given);
  {"op": "command", "match": TEXT, "nth": k, "when": W}
      the k-th Store.command whose SQL contains TEXT (e.g. "EXCHANGE TABLES"; a list: all of them);
  {"op": "report", "nth": 1, "when": "before"}
      the rebuild's coverage report (after the swap, before the JSON and the success line).

W is "before" (the call never happens), "after" (it completed, its caller never learns),
"during" (a thread kills the process `delay` seconds into the call) or "hold" (wait until the
file `release` exists, then go on: a run parked at a known point, alive, holding its lock).
When the point is reached the file `marker` (if given) is written with the pid.
An empty SPEC ({}) runs the CLI unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
from pathlib import Path


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(spec: dict) -> None:
    if not spec:
        return
    from console.engine import rebuild as rebuild_mod
    from console.engine.store import Store

    seen = {"n": 0}
    nth = int(spec.get("nth", 1))
    when = spec.get("when", "before")

    async def fire(call):
        if spec.get("marker"):
            Path(spec["marker"]).write_text(str(os.getpid()))
        if when == "before":
            _die()
        if when == "hold":
            release = Path(spec["release"])
            while not release.exists():
                await asyncio.sleep(0.02)
            return await call()
        if when == "during":
            threading.Timer(float(spec.get("delay", 0.001)), _die).start()
        await call()
        _die()

    def hit() -> bool:
        seen["n"] += 1
        return seen["n"] == nth

    op = spec["op"]
    if op == "insert":
        original = Store.insert_columns

        async def insert_columns(self, table, columns, *, dedup_token=None):
            wanted = table == spec["table"] and (
                "status" not in spec or spec["status"] in list(columns.get("status", ())))
            if wanted and hit():
                return await fire(lambda: original(self, table, columns, dedup_token=dedup_token))
            return await original(self, table, columns, dedup_token=dedup_token)

        Store.insert_columns = insert_columns
    elif op == "command":
        original_cmd = Store.command

        async def command(self, sql, parameters=None):
            needles = [spec["match"]] if isinstance(spec["match"], str) else spec["match"]
            if all(n.lower() in sql.lower() for n in needles) and hit():
                return await fire(lambda: original_cmd(self, sql, parameters))
            return await original_cmd(self, sql, parameters)

        Store.command = command
    elif op == "report":
        original_report = rebuild_mod.build_report

        async def build_report(*args, **kwargs):
            if hit():
                return await fire(lambda: original_report(*args, **kwargs))
            return await original_report(*args, **kwargs)

        rebuild_mod.build_report = build_report
    else:  # pragma: no cover - a typo in a test
        raise SystemExit(f"unknown kill point {op!r}")


def main() -> int:
    spec = json.loads(sys.argv[1])
    arm(spec)
    from console.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
