"""ClickHouse access: one clickhouse-connect client on one dedicated thread.

The same code drives the embedded engine (`chdb:///path`, the zero-setup default) and a
server (`http(s)://user:pass@host:8123/`). chDB runs inside this process and is not safe to
call from several threads, and a blocking insert must never stall the event loop, so every
call is shipped to a single worker thread and awaited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from console.settings import redact
from console.sql import SQL_DIR, load, statements

SCHEMA_VERSION = 1
READ_ATTEMPTS = 5  # ~6 s of retries for a failing read
# The embedded engine shares this process's memory with the backfill (issue 8: the whole run
# < 1 GB RSS): large GROUP BYs, sorts and joins (gates, rebuild) spill to disk past 256 MiB.
# Measured on 20 M transfer rows (bench/rebuild.py, net-flow view): 1 GiB let a query reach
# ~1.8 GB RSS; 256 MiB ~0.8 GB; 128 MiB was no lower (more spill files to merge) and slower.
# The heavy statements also run on one thread (SETTINGS in console/sql/rebuild/*.sql): each
# aggregating thread holds its own state, ~200 MB more at 2 threads.
EMBEDDED_MEMORY_SETTINGS = {
    "max_bytes_before_external_group_by": str(256 << 20),
    "max_bytes_before_external_sort": str(256 << 20),
    "join_algorithm": "auto",
    "max_bytes_in_join": str(256 << 20),
}


def schema_files() -> list[str]:
    """Every `console/sql/schema/NNN_*.sql`, applied in name order."""
    return sorted(f"schema/{p.name}" for p in (SQL_DIR / "schema").glob("*.sql"))


def _no_pandas_probe() -> None:
    """Stop clickhouse-connect from importing pandas on our first insert.

    Its insert path asks `options.pd` whether the data is a DataFrame, and that lazy attribute
    imports pandas (~0.5 s of start-up and ~60 MB, measured in bench/peers/profile.py) although we
    only ever insert Python column lists. When pandas is not loaded already, nothing we pass can be
    a DataFrame, so the probe's answer is known: "no pandas".
    """
    import sys

    from clickhouse_connect.driver import options

    if "pandas" not in sys.modules and "pd" not in vars(options):
        options.pd = None
        options.pd_time_test = None


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim from the libc already loaded into this process, or None (another
    libc, another OS). Not ctypes.util.find_library: it runs ldconfig, ~10 ms at every start."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _find_malloc_trim()


def trim_heap() -> None:
    """Hand the free pages of the Python side's heap back to the OS. glibc keeps what the
    backfill freed (response bodies, parsed logs, decoded columns: many threads, many arenas)
    and counts it in RSS: malloc_trim gave back 60-90 MB at the end of a 120-day run."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class StoreError(RuntimeError):
    """A ClickHouse call failed; the message never carries the DSN's password."""


def _connect(dsn: str):
    import clickhouse_connect  # imported here: ~0.3 s, not needed for --help or status

    if dsn.startswith("chdb://"):
        path = dsn[len("chdb://"):]
        Path(path).mkdir(parents=True, exist_ok=True, mode=0o700)
        client = clickhouse_connect.get_client(dsn=dsn)
        # see EMBEDDED_MEMORY_SETTINGS: spill to disk instead of growing this process
        for name, value in EMBEDDED_MEMORY_SETTINGS.items():
            client.set_client_setting(name, value)
        return client
    return clickhouse_connect.get_client(dsn=dsn, connect_timeout=10, send_receive_timeout=300)


class Store:
    """Async facade over one ClickHouse client living on its own thread."""

    def __init__(self, dsn: str, database: str = "backfill") -> None:
        self.dsn = dsn
        self.database = database
        self.label = redact(dsn)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._client = None
        self.healthy = True
        self.inserts = 0
        self.rows_inserted = 0
        self._can_purge = True  # until the embedded engine says it has no jemalloc

    # --- lifecycle -------------------------------------------------------------------------
    @classmethod
    async def open(cls, dsn: str, database: str = "backfill", *, apply_schema: bool = True) -> "Store":
        store = cls(dsn, database)
        try:
            await store._run(store._connect_sync)
            if apply_schema:
                await store.apply_schema()
        except BaseException:
            await store.close()  # no thread left behind by a store that could not open
            raise
        return store

    def _connect_sync(self) -> None:
        self._client = _connect(self.dsn)
        _no_pandas_probe()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await self._run(client.close)
            except Exception:
                pass
        self._pool.shutdown(wait=True)

    async def _run(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        except Exception as exc:  # clickhouse-connect and chdb raise many types
            self.healthy = False
            raise StoreError(self._clean(exc)) from None
        self.healthy = True
        return result

    def _clean(self, exc: Exception) -> str:
        text = f"{type(exc).__name__}: {exc}"
        if self.dsn in text:
            text = text.replace(self.dsn, self.label)
        return text[:500]

    @property
    def embedded(self) -> bool:
        """chDB inside this process (`chdb://`), as opposed to a ClickHouse server."""
        return self.dsn.startswith("chdb://")

    async def release_memory(self) -> None:
        """Hand freed memory back to the OS — around heavy statements, and every few seconds
        during the backfill (the writer): the Python heap's (trim_heap) and the embedded
        engine's (jemalloc keeps freed pages for a while, counted in this process's RSS).
        Best effort: never raises."""
        trim_heap()
        if not (self.embedded and self._can_purge):
            return
        try:
            await self._run(lambda: self._client.command("SYSTEM JEMALLOC PURGE"))
        except Exception:  # a chDB built without jemalloc: do not ask again
            self._can_purge = False

    async def parts(self, tables: Sequence[str]) -> dict[str, tuple[int, int]]:
        """{table: (active parts, rows in them)} for those of `tables` that hold a part."""
        rows = await self.query(
            "SELECT table, count(), sum(rows) FROM system.parts WHERE database = %(db)s AND active "
            "AND table IN %(tables)s GROUP BY table", {"db": self.database, "tables": tuple(tables)})
        return {t: (int(n), int(r)) for t, n, r in rows}

    async def compact(self, tables: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Merge each table into one part, on the embedded store; returns {table: (active parts
        before, after)} (empty on a server, which merges in its own memory).

        Why: the gates and the rebuild read the transfer tables with FINAL, which reads all of a
        table's parts side by side. After a backfill that is ~10-15 parts: ~58 MB of read buffers
        per transfer table in every net-flow chunk, in this process, and the background merges
        of the last parts run during the checks. Merged once when the data is final, a FINAL
        read is one part (~6 MB). At 1048 days (bench/memory.py, fresh process): the merge takes
        ~31 s and +200 MB; the closing gates then peak at 682 MB instead of 718, rebuild step 1
        at 727 instead of 796. A table already in one part is left alone."""
        if not self.embedded:
            return {}
        before = await self.parts(tables)
        for table in tables:
            if before.get(table, (0, 0))[0] > 1:
                await self.release_memory()
                await self.command(f"OPTIMIZE TABLE {{db}}.`{table}` FINAL "
                                   "SETTINGS optimize_skip_merged_partitions = 1")
        await self.release_memory()
        after = await self.parts(tables)
        return {t: (before.get(t, (0, 0))[0], after.get(t, (0, 0))[0]) for t in tables}

    # --- schema ----------------------------------------------------------------------------
    def sql(self, text: str) -> str:
        """Fill the `{db}` placeholder of our SQL files."""
        return text.replace("{db}", f"`{self.database}`")

    async def apply_schema(self) -> None:
        """Create everything that is missing; safe to run on every start."""

        def apply() -> None:
            for name in schema_files():
                for stmt in statements(load(name)):
                    self._client.command(self.sql(stmt))
            have = self._client.query(
                f"SELECT max(version) FROM `{self.database}`.schema_version"
            ).result_rows[0][0]
            if not have or have < SCHEMA_VERSION:
                self._client.command(
                    f"INSERT INTO `{self.database}`.schema_version (version) VALUES ({SCHEMA_VERSION})"
                )

        await self._run(apply)

    # --- calls -----------------------------------------------------------------------------
    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        return await self._run(lambda: self._client.command(self.sql(sql), parameters=parameters))

    async def _read(self, fn, attempts: int = READ_ATTEMPTS):
        """A read is safe to repeat: retry a failing one a few times (a store blip must not end a
        run); the last error is raised."""
        delay = 0.2
        for attempt in range(attempts):
            try:
                return await self._run(fn)
            except StoreError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple]:
        return await self._read(
            lambda: self._client.query(self.sql(sql), parameters=parameters).result_rows
        )

    async def query_dicts(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict]:
        def go():
            result = self._client.query(self.sql(sql), parameters=parameters)
            names = result.column_names
            return [dict(zip(names, row)) for row in result.result_rows]

        return await self._read(go)

    async def insert_columns(
        self, table: str, columns: Mapping[str, Sequence[Any]], *, dedup_token: str | None = None
    ) -> int:
        """Insert column-oriented data (one list per column); returns the row count.

        Column-oriented is ~4x faster than row lists in clickhouse-connect (measured in
        bench/). A dedup token makes a retried insert of the same batch a no-op.
        """
        names = list(columns)
        # The client gets its own list of each column, emptied once sent: clickhouse-connect
        # 1.12 keeps an insert's data in a reference cycle (its InsertContext refers to itself
        # through a bound method, and `data = None` leaves the block columns), so the rows —
        # a writer batch is up to 100K rows of Python objects — lived until the cyclic GC's
        # next full pass: ~90 MB of garbage at the end of a 200-day run.
        data = [list(columns[n]) for n in names]
        rows = len(data[0]) if data else 0
        if rows == 0:
            return 0
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None

        def go():
            try:
                self._client.insert(
                    f"`{self.database}`.`{table}`", data, column_names=names,
                    column_oriented=True, settings=settings,
                )
            finally:
                for values in data:
                    values.clear()

        await self._run(go)
        self.inserts += 1
        self.rows_inserted += rows
        return rows

    async def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert a few dict rows (run-state tables); not for the hot path."""
        if not rows:
            return 0
        names = list(rows[0])
        return await self.insert_columns(table, {n: [r[n] for r in rows] for n in names})
