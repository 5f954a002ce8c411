"""Shared pieces of the end-to-end suites: run the real engine on a devchain world, read back
what landed in ClickHouse, and compare it with the world's own ground truth."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from console.devchain.world import build_world
from console.engine.launch import run_engine
from console.engine.store import Store
from console.settings import load_settings

# Key columns and the columns compared, per table (created_at is ours, not the chain's).
TABLES = {
    "erc20_transfers": ("token", "from_address", "to_address", "value", "tx_hash", "log_index",
                        "block_number", "block_time", "day_idx"),
    "erc1155_transfers": ("contract", "operator", "from_address", "to_address", "token_id", "value",
                          "tx_hash", "log_index", "batch_index", "block_number", "block_time", "day_idx"),
    "condition_resolutions": ("contract", "condition_id", "oracle", "question_id",
                              "outcome_slot_count", "payout_numerators", "tx_hash", "log_index",
                              "block_number", "block_time", "day_idx"),
    "token_registrations": ("contract", "token0", "token1", "condition_id", "tx_hash", "log_index",
                            "block_number", "block_time", "day_idx"),
}


def engine_settings(data_dir: Path, **over: Any):
    base = {"data_dir": str(data_dir), "devchain_density": "small", "devchain_profile": "clean",
            "monitor_interval": 1, "stall_seconds": 60, "gate_interval": 3600, "no_rebuild": True,
            "shards": 3}
    base.update(over)
    return load_settings(base)


def run(settings) -> int:
    return asyncio.run(run_engine(settings, say=lambda m: None))


def _norm(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return int(value.replace(tzinfo=dt.timezone.utc).timestamp()) if value.tzinfo is None \
            else int(value.timestamp())
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def normalise(rows: list[dict], columns: tuple[str, ...]) -> list[tuple]:
    return sorted(tuple(_norm(r[c]) for c in columns) for r in rows)


def stored_rows(settings, table: str) -> list[tuple]:
    async def go():
        store = await Store.open(settings.dsn, settings.database, apply_schema=False)
        try:
            return await store.query_dicts(f"SELECT * FROM {{db}}.{table} FINAL")
        finally:
            await store.close()

    return normalise(asyncio.run(go()), TABLES[table])


def truth(settings, table: str, scope: str) -> list[tuple]:
    world = build_world(settings.devchain_density, seed=settings.devchain_seed)
    name = table
    return normalise(world.truth_rows(name, scope=scope), TABLES[table])


def query(settings, sql: str) -> list[tuple]:
    async def go():
        store = await Store.open(settings.dsn, settings.database, apply_schema=False)
        try:
            await store.command("USE {db}")
            return await store.query(sql)
        finally:
            await store.close()

    return asyncio.run(go())
