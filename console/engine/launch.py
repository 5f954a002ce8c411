"""From validated settings to a running supervisor: preflight, data-dir lock, fingerprint.

Order matters for "bad input writes nothing": the RPC is reached and its chain id checked
*before* the data dir is created; the data dir is locked before the mirror is opened, so a
second process on the same data dir is refused instead of corrupting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterator

from console.engine.state import STATE_FILE, open_readonly
from console.settings import ConfigError, Settings, redact

LOCK_FILE = ".lock"


class DataDirBusy(ConfigError):
    pass


@dataclass
class RunTarget:
    """What the run covers and where the RPC is (after the devchain, if any, started)."""

    start_date: dt.date
    days: int
    rpc_url: str
    simulated: bool


def check_dir(path: Path, option: str) -> None:
    """Refuse a directory we could not use (or create), without creating anything."""
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{option} {path}: exists and is not a directory")
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise ConfigError(f"{option} {path}: not readable and writable by this user")
        return
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: cannot be created ({parent} is not a writable directory)")


def check_data_dir(data_dir: Path) -> None:
    check_dir(data_dir, "--data-dir")


async def check_store(settings: Settings) -> None:
    """Refuse a ClickHouse we cannot use before anything is written: an embedded path we
    cannot create, or a server that does not answer."""
    dsn = settings.dsn
    if dsn.startswith("chdb://"):
        if settings.clickhouse is not None:
            check_dir(Path(dsn[len("chdb://"):]), "--clickhouse")
        return
    from console.engine.store import Store, StoreError

    try:
        store = await Store.open(dsn, settings.database, apply_schema=False)
        try:
            await store.command("SELECT 1")
        finally:
            await store.close()
    except StoreError as exc:
        raise ConfigError(f"--clickhouse {redact(dsn)}: cannot use it ({exc})") from None


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Exclusive lock on the data dir for the life of a run (flock: released if we die)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise DataDirBusy(
            f"--data-dir {data_dir}: in use by another backfill-console (pid {pid}); "
            f"use `backfill-console attach` to watch it, or another --data-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    try:
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def lock_holder(data_dir: Path) -> int | None:
    """The pid of a live process holding the lock, or None."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stored_fingerprint(data_dir: Path) -> str | None:
    try:
        conn = open_readonly(data_dir)
        if conn is None:
            return None
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='fingerprint'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None
    return row[0] if row else None


def devchain_defaults(settings: Settings) -> tuple[dt.date, int]:
    from console.devchain.density import DENSITIES

    d = DENSITIES[settings.devchain_density]
    start = settings.start_date or d.default_start
    return start, settings.day_count(d.default_days)


async def preflight_rpc(url: str, expected_chain_id: int, timeout: float) -> None:
    """Reach the RPC and check the chain before anything is written (wrong chain = exit 2)."""
    from console.engine.errors import RpcError
    from console.engine.rpc import RpcClient

    client = RpcClient(url, timeout=min(timeout, 15.0), max_retries=3, unavailable_after=30.0)
    try:
        chain_id = await client.chain_id()
    except RpcError as exc:
        raise RuntimeError(f"RPC {redact(url)} unreachable: {exc}") from None
    finally:
        await client.close()
    if chain_id != expected_chain_id:
        raise ConfigError(f"--rpc-url {redact(url)}: chain id {chain_id}, expected {expected_chain_id} "
                          f"(set [protocol] chain_id in backfill.toml for another chain)")


async def reset_run(settings: Settings) -> None:
    """--reset: forget the mirror and drop this run's database."""
    from console.engine.store import Store

    for suffix in ("", "-wal", "-shm"):
        p = settings.data_dir / (STATE_FILE + suffix)
        if p.exists():
            p.unlink()
    for p in (settings.data_dir / "backfill",):
        shutil.rmtree(p, ignore_errors=True)
    store = await Store.open(settings.dsn, settings.database, apply_schema=False)
    try:
        await store.command(f"DROP DATABASE IF EXISTS `{settings.database}`")
    finally:
        await store.close()


async def open_or_replace_state(data_dir: Path, say: Callable[[str], None]):
    """Open the mirror; a damaged one is moved aside (kept for inspection) and rebuilt."""
    from console.engine.state import StateDB, StateError

    try:
        state = await StateDB.open(data_dir)
        await state.get_meta("fingerprint")
        return state
    except (StateError, sqlite3.DatabaseError) as exc:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        for suffix in ("", "-wal", "-shm"):
            p = data_dir / (STATE_FILE + suffix)
            if p.exists():
                p.rename(data_dir / f"{STATE_FILE}{suffix}.damaged-{stamp}")
        say(f"warning: {STATE_FILE} is damaged ({exc}); moved aside, rebuilding it from ClickHouse")
        return await StateDB.open(data_dir)


async def run_engine(settings: Settings, *, on_ready: Callable[[object], Awaitable[None] | None] | None = None,
                     say: Callable[[str], None] = print) -> int:
    """The whole run: devchain (if any), preflight, lock, supervisor. Returns the exit code."""
    from console.engine.supervisor import EXIT_RUNTIME, Supervisor

    check_data_dir(settings.data_dir)
    await check_store(settings)
    with contextlib.ExitStack() as stack:
        if settings.is_devchain:
            from console.devchain.process import spawn

            start, days = devchain_defaults(settings)
            say(f"starting the devchain (SIMULATED CHAIN, profile {settings.devchain_profile}, "
                f"world {settings.devchain_density}, seed {settings.devchain_seed}) ...")
            chain = stack.enter_context(spawn(
                density=settings.devchain_density, profile=settings.devchain_profile,
                seed=settings.devchain_seed, start_date=start, days=days))
            target = RunTarget(start, days, chain.url, True)
        else:
            target = RunTarget(settings.start_date, settings.day_count(0), settings.rpc_url.get_secret_value(), False)
            if target.days <= 0:
                raise ConfigError("--days or --end-date is required with a real --rpc-url")
            last = target.start_date + dt.timedelta(days=target.days - 1)
            if last >= dt.datetime.now(dt.timezone.utc).date():
                raise ConfigError(f"--days {target.days} from {target.start_date} ends on {last}, which has "
                                  f"not ended yet (UTC); a day is backfilled once it is over and final")
        try:
            await preflight_rpc(target.rpc_url, settings.protocol.chain_id, settings.rpc_timeout)
        except RuntimeError as exc:
            say(f"backfill-console: error: {exc}")
            return EXIT_RUNTIME
        fingerprint = settings.fingerprint(target.start_date, target.days)
        stored = stored_fingerprint(settings.data_dir)
        if stored and stored != fingerprint and not settings.reset:
            raise ConfigError(
                f"--data-dir {settings.data_dir}: holds a different run (other dates, scope or "
                f"protocol); use --reset to start afresh or another --data-dir")
        stack.enter_context(data_dir_lock(settings.data_dir))
        if settings.reset:
            say("--reset: dropping the previous run's state and tables")
            await reset_run(settings)
        sup = Supervisor(settings, rpc_url=target.rpc_url, simulated=target.simulated,
                         start_date=target.start_date, days_total=target.days)

        state = await open_or_replace_state(settings.data_dir, say)
        try:
            await state.set_meta("fingerprint", fingerprint)
            await state.set_meta("start_date", target.start_date.isoformat())
            await state.set_meta("days", str(target.days))
            await state.set_meta("simulated", "1" if target.simulated else "0")
            await state.set_meta("shards", str(settings.shards))
        finally:
            await state.close()
        if on_ready is not None:
            res = on_ready(sup)
            if asyncio.iscoroutine(res):
                await res
        return await sup.run()
