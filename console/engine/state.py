"""The SQLite mirror (`data/state.sqlite`): what a restart needs without asking ClickHouse.

It holds the run fingerprint, day states and coverage, block boundaries, learned provider
limits, shard epochs, gate and rebuild history, the last published snapshot (for `status`,
`screenshot` and attached consoles) and the `commands` table an attached console writes to.
WAL mode lets readers (attach, status) look while the engine writes.

Writers use aiosqlite (never blocking the event loop); read-only tools use plain sqlite3.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import aiosqlite

STATE_FILE = "state.sqlite"
STATE_SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS days (
    day_idx INTEGER PRIMARY KEY, day TEXT NOT NULL, start_block INTEGER, end_block INTEGER,
    status TEXT NOT NULL DEFAULT 'PENDING', worker_id INTEGER, epoch INTEGER NOT NULL DEFAULT 0,
    claim_id INTEGER NOT NULL DEFAULT 0, erc20_count INTEGER NOT NULL DEFAULT 0,
    erc1155_count INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, next_attempt_at REAL NOT NULL DEFAULT 0, updated_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS coverage (
    day_idx INTEGER NOT NULL, claim_id INTEGER NOT NULL, stream TEXT NOT NULL,
    from_block INTEGER NOT NULL, to_block INTEGER NOT NULL, log_count INTEGER NOT NULL,
    PRIMARY KEY (day_idx, claim_id, stream, from_block)
);
CREATE TABLE IF NOT EXISTS boundaries (ts INTEGER PRIMARY KEY, block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS provider_limits (
    provider TEXT PRIMARY KEY, max_range INTEGER, max_results INTEGER, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shards (
    shard_id INTEGER PRIMARY KEY, epoch INTEGER NOT NULL DEFAULT 0, restarts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS gate_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, mode TEXT, value REAL, threshold REAL,
    comparator TEXT, passed INTEGER, detail TEXT, at TEXT
);
CREATE TABLE IF NOT EXISTS rebuild_steps (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, step INTEGER, name TEXT, state TEXT,
    started_at TEXT, seconds REAL, detail TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, level TEXT, source TEXT, message TEXT
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, command TEXT NOT NULL,
    arg INTEGER, applied_at REAL, result TEXT
);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL, body TEXT);
"""


class StateError(RuntimeError):
    pass


@dataclass
class DayRecord:
    day_idx: int
    day: dt.date
    start_block: int | None
    end_block: int | None
    status: str
    worker_id: int | None
    epoch: int
    claim_id: int
    erc20_count: int
    erc1155_count: int
    attempts: int
    last_error: str | None
    next_attempt_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> "DayRecord":
        r = list(row)
        r[1] = dt.date.fromisoformat(r[1])
        return cls(*r)


_DAY_COLUMNS = ("day_idx, day, start_block, end_block, status, worker_id, epoch, claim_id, "
                "erc20_count, erc1155_count, attempts, last_error, next_attempt_at, updated_at")


class StateDB:
    """The engine's writer connection to the mirror."""

    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    async def open(cls, data_dir: Path) -> "StateDB":
        path = data_dir / STATE_FILE
        # No statement cache: no sqlite3_stmt is ever shared by two cursors.
        conn = await aiosqlite.connect(path, cached_statements=0)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            await conn.executescript(SCHEMA)
            await conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                               (str(STATE_SCHEMA_VERSION),))
            await conn.commit()
        except sqlite3.DatabaseError as exc:
            await conn.close()
            raise StateError(f"{path}: {exc}") from None
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(path) + suffix)
            if p.exists():
                os.chmod(p, 0o600)
        return cls(path, conn)

    async def close(self) -> None:
        await self.conn.close()

    # Writes go through `async with`, so their cursors are closed on aiosqlite's own thread. A
    # cursor left to the garbage collector is finalised on the event loop's thread while the
    # worker may be stepping the same statement: SQLite answers "bad parameter or other API
    # misuse" (seen after ~70-700 days of a long run).
    async def _write(self, sql: str, params: Iterable[Any] = ()) -> None:
        async with self.conn.execute(sql, tuple(params)):
            pass

    async def _write_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        async with self.conn.executemany(sql, rows):
            pass

    # --- meta --------------------------------------------------------------------------------
    async def get_meta(self, key: str) -> str | None:
        async with self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._write("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        await self.conn.commit()

    # --- days --------------------------------------------------------------------------------
    async def ensure_days(self, start: dt.date, count: int) -> None:
        await self._write_many(
            "INSERT OR IGNORE INTO days (day_idx, day) VALUES (?, ?)",
            [(i, (start + dt.timedelta(days=i)).isoformat()) for i in range(count)],
        )
        await self.conn.commit()

    async def days(self) -> list[DayRecord]:
        async with self.conn.execute(f"SELECT {_DAY_COLUMNS} FROM days ORDER BY day_idx") as cur:
            return [DayRecord.from_row(r) for r in await cur.fetchall()]

    async def save_day(self, d: DayRecord) -> None:
        await self.save_days([d])

    async def save_days(self, records: Iterable[DayRecord]) -> None:
        now = time.time()
        rows = []
        for d in records:
            d.updated_at = now
            rows.append((d.day_idx, d.day.isoformat(), d.start_block, d.end_block, d.status,
                         d.worker_id, d.epoch, d.claim_id, d.erc20_count, d.erc1155_count,
                         d.attempts, d.last_error, d.next_attempt_at, d.updated_at))
        await self._write_many(
            f"INSERT OR REPLACE INTO days ({_DAY_COLUMNS}) VALUES ({','.join('?' * 14)})", rows)
        await self.conn.commit()

    async def add_coverage(self, rows: list[tuple[int, int, str, int, int, int]]) -> None:
        """rows: (day_idx, claim_id, stream, from_block, to_block, log_count)."""
        await self._write_many("INSERT OR REPLACE INTO coverage VALUES (?,?,?,?,?,?)", rows)
        await self.conn.commit()

    async def coverage(self, day_idx: int, claim_id: int) -> list[tuple[str, int, int, int]]:
        async with self.conn.execute(
            "SELECT stream, from_block, to_block, log_count FROM coverage "
            "WHERE day_idx=? AND claim_id=? ORDER BY stream, from_block", (day_idx, claim_id),
        ) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def drop_stale_coverage(self) -> None:
        """Forget sub-ranges of claims that are no longer a day's current claim."""
        await self._write(
            "DELETE FROM coverage WHERE NOT EXISTS (SELECT 1 FROM days d WHERE "
            "d.day_idx = coverage.day_idx AND d.claim_id = coverage.claim_id)")
        await self.conn.commit()

    # --- boundaries (DayResolver cache protocol) ---------------------------------------------
    async def get_boundary(self, ts: int) -> int | None:
        async with self.conn.execute("SELECT block FROM boundaries WHERE ts=?", (ts,)) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def put_boundary(self, ts: int, block: int) -> None:
        await self._write("INSERT OR REPLACE INTO boundaries VALUES (?, ?)", (ts, block))
        await self.conn.commit()

    # --- provider limits ---------------------------------------------------------------------
    async def get_limits(self, provider: str) -> dict | None:
        async with self.conn.execute(
            "SELECT max_range, max_results FROM provider_limits WHERE provider=?", (provider,)
        ) as cur:
            row = await cur.fetchone()
        return {"max_range": row[0], "max_results": row[1]} if row else None

    async def put_limits(self, provider: str, limits: dict) -> None:
        await self._write(
            "INSERT OR REPLACE INTO provider_limits VALUES (?, ?, ?, ?)",
            (provider, limits.get("max_range"), limits.get("max_results"), time.time()),
        )
        await self.conn.commit()

    # --- shards ------------------------------------------------------------------------------
    async def next_epoch(self, shard_id: int, restart: bool) -> int:
        """A new epoch for a (re)started shard: the fence against its older incarnations."""
        await self._write(
            "INSERT INTO shards (shard_id, epoch, restarts) VALUES (?, 1, 0) "
            "ON CONFLICT(shard_id) DO UPDATE SET epoch = epoch + 1, restarts = restarts + ?",
            (shard_id, 1 if restart else 0),
        )
        await self.conn.commit()
        async with self.conn.execute("SELECT epoch FROM shards WHERE shard_id=?", (shard_id,)) as cur:
            return (await cur.fetchone())[0]

    # --- history -----------------------------------------------------------------------------
    async def add_gate_results(self, rows: list[tuple]) -> None:
        """rows: (name, mode, value, threshold, comparator, passed, detail, at_iso)."""
        await self._write_many(
            "INSERT INTO gate_results (name, mode, value, threshold, comparator, passed, detail, at) "
            "VALUES (?,?,?,?,?,?,?,?)", rows)
        await self.conn.commit()

    async def add_rebuild_step(self, row: tuple) -> None:
        """row: (run_id, step, name, state, started_at_iso, seconds, detail)."""
        await self._write(
            "INSERT INTO rebuild_steps (run_id, step, name, state, started_at, seconds, detail) "
            "VALUES (?,?,?,?,?,?,?)", row)
        await self.conn.commit()

    async def add_event(self, at: str, level: str, source: str, message: str) -> None:
        await self._write("INSERT INTO events (at, level, source, message) VALUES (?,?,?,?)",
                                (at, level, source, message))
        await self._write("DELETE FROM events WHERE id <= (SELECT max(id) - 2000 FROM events)")
        await self.conn.commit()

    # --- commands and published snapshot -----------------------------------------------------
    async def pending_commands(self) -> list[tuple[int, str, int | None]]:
        async with self.conn.execute(
            "SELECT id, command, arg FROM commands WHERE applied_at IS NULL ORDER BY id"
        ) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def mark_command(self, command_id: int, result: str) -> None:
        await self._write("UPDATE commands SET applied_at=?, result=? WHERE id=?",
                                (time.time(), result, command_id))
        await self.conn.commit()

    async def publish_snapshot(self, body: str) -> None:
        await self._write("INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?)", (time.time(), body))
        await self.conn.commit()


# --- read-only access for status / screenshot / attach ------------------------------------------
def open_readonly(data_dir: Path) -> sqlite3.Connection | None:
    """A read-only connection, or None when there is no state yet. Never creates anything."""
    path = data_dir / STATE_FILE
    if not path.is_file():
        return None
    # No WAL file means no writer (a finished run checkpointed and removed it): read it as
    # immutable, so a look at a finished run creates no -wal/-shm files beside it.
    live = Path(str(path) + "-wal").exists()
    return sqlite3.connect(f"file:{path}?mode=ro{'' if live else '&immutable=1'}", uri=True, timeout=5)


def send_command(data_dir: Path, command: str, arg: int | None = None) -> None:
    """Queue a command for the engine that owns this data dir (used by attached consoles)."""
    conn = sqlite3.connect(data_dir / STATE_FILE, timeout=5)
    try:
        conn.execute("INSERT INTO commands (at, command, arg) VALUES (?, ?, ?)", (time.time(), command, arg))
        conn.commit()
    finally:
        conn.close()


def read_snapshot_body(conn: sqlite3.Connection) -> tuple[float, dict] | None:
    row = conn.execute("SELECT at, body FROM snapshot WHERE id=1").fetchone()
    if not row:
        return None
    return row[0], json.loads(row[1])
