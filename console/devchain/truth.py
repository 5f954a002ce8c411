"""Ground truth: the rows each table of DESIGN §5.2 must hold after a correct backfill.

Selection is by what the world *knows* a log is (its kind, set when the generator emitted it),
never by an eth_getLogs filter — so comparing these rows with what the protocol profile's
streams return really tests the filters. Values are decoded from the stored log topics/data
(hex) into the table shapes: amounts and token ids as decimal strings, addresses and hashes as
lowercase 0x-hex, block_time as unix seconds, log_index = the log's per-block logIndex.
`pnl` comes from the markets' own bookkeeping at the prices they traded (markets.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import orjson

from .abi import decode_uint_arrays, decode_words, topic_address
from .markets import K_CTF, K_REG, K_RES, K_USDC_OTHER, K_USDC_PM
from console.protocol import TOPIC_TRANSFER_BATCH

if TYPE_CHECKING:  # pragma: no cover
    from .world import World

TABLES = ("erc20_transfers", "erc1155_transfers", "condition_resolutions", "token_registrations", "days", "pnl")


def _logs_of_kind(world: "World", kinds: set[int], day: int | None = None) -> Iterator[tuple[int, int, dict]]:
    days = range(world.days) if day is None else (day,)
    for d in days:
        dl = world.day_logs(d)
        kind, raw = dl.kind, dl.raw
        for p in range(len(raw)):
            if kind[p] in kinds:
                yield d, p, orjson.loads(raw[p])


def _base(world: "World", d: int, log: dict) -> dict:
    bn = int(log["blockNumber"], 16)
    return {
        "tx_hash": log["transactionHash"],
        "log_index": int(log["logIndex"], 16),
        "block_number": bn,
        "block_time": world.block_timestamp(bn),
        "day_idx": d,
    }


def erc20_rows(world: "World", scope: str = "polymarket", day: int | None = None) -> Iterator[dict]:
    kinds = {K_USDC_PM} if scope == "polymarket" else {K_USDC_PM, K_USDC_OTHER}
    for d, _p, log in _logs_of_kind(world, kinds, day):
        t = log["topics"]
        row = {
            "token": log["address"],
            "from_address": topic_address(t[1]),
            "to_address": topic_address(t[2]),
            "value": str(int(log["data"], 16)),
        }
        row.update(_base(world, d, log))
        yield row


def erc1155_rows(world: "World", day: int | None = None) -> Iterator[dict]:
    for d, _p, log in _logs_of_kind(world, {K_CTF}, day):
        t = log["topics"]
        head = {
            "contract": log["address"],
            "operator": topic_address(t[1]),
            "from_address": topic_address(t[2]),
            "to_address": topic_address(t[3]),
        }
        base = _base(world, d, log)
        if t[0] == TOPIC_TRANSFER_BATCH:
            ids, values = decode_uint_arrays(log["data"], 2)
        else:
            tid, value = decode_words(log["data"])
            ids, values = [tid], [value]
        for i, (tid, value) in enumerate(zip(ids, values)):
            row = dict(head)
            row.update(token_id=str(tid), value=str(value))
            row.update(base)
            row["batch_index"] = i
            yield row


def resolution_rows(world: "World", day: int | None = None) -> Iterator[dict]:
    for d, _p, log in _logs_of_kind(world, {K_RES}, day):
        t = log["topics"]
        w = decode_words(log["data"])
        n = w[2]
        row = {
            "contract": log["address"],
            "condition_id": t[1],
            "oracle": topic_address(t[2]),
            "question_id": t[3],
            "outcome_slot_count": w[0],
            "payout_numerators": w[3 : 3 + n],
        }
        row.update(_base(world, d, log))
        yield row


def registration_rows(world: "World", day: int | None = None) -> Iterator[dict]:
    for d, _p, log in _logs_of_kind(world, {K_REG}, day):
        t = log["topics"]
        row = {
            "contract": log["address"],
            "token0": str(int(t[1], 16)),
            "token1": str(int(t[2], 16)),
            "condition_id": t[3],
        }
        row.update(_base(world, d, log))
        yield row


def day_rows(world: "World") -> Iterator[dict]:
    for d in range(world.days):
        dl = world.day_logs(d)
        k = dl.kind
        pm = k.count(K_USDC_PM)
        other = k.count(K_USDC_OTHER)
        # rows, not logs: a TransferBatch is one row per id
        n1155 = sum(1 for _ in erc1155_rows(world, d))
        s, e = world.day_bounds(d)
        yield {
            "day_idx": d,
            "day": world.day_date(d).isoformat(),
            "start_block": s,
            "end_block": e,
            "erc20_polymarket": pm,
            "erc20_all": pm + other,
            "erc1155": n1155,
        }


def pnl_rows(world: "World") -> Iterator[dict]:
    for mp in world.all_markets():
        yield from world.market_result(mp).pnl


def win_rate(rows) -> tuple[float, int, int]:
    """Per-position win rate: among positions closed (amount 0) or settled, share with PnL > 0."""
    counted = wins = 0
    for r in rows:
        if r["amount_held"] == 0 or r["settled"]:
            counted += 1
            wins += r["realized_pnl"] > 0
    return (wins / counted if counted else 0.0), wins, counted


def truth_rows(world: "World", table: str, scope: str = "polymarket") -> list[dict]:
    """Rows of one truth table; `table` may also be an export file stem
    (erc20_transfers_polymarket / erc20_transfers_all)."""
    if table.endswith(".jsonl"):
        table = table[:-6]
    if table in ("erc20_transfers_polymarket", "erc20_transfers_all"):
        table, scope = "erc20_transfers", table.rsplit("_", 1)[1]
    if table == "erc20_transfers":
        if scope not in ("polymarket", "all"):
            raise ValueError(f"unknown usdc scope {scope!r} (polymarket | all)")
        return list(erc20_rows(world, scope))
    if table == "erc1155_transfers":
        return list(erc1155_rows(world))
    if table == "condition_resolutions":
        return list(resolution_rows(world))
    if table == "token_registrations":
        return list(registration_rows(world))
    if table == "days":
        return list(day_rows(world))
    if table == "pnl":
        return list(pnl_rows(world))
    raise ValueError(f"unknown truth table {table!r} (one of {', '.join(TABLES)})")


def _write_jsonl(path: Path, rows) -> int:
    n = 0
    with open(path, "wb") as f:
        for r in rows:
            f.write(orjson.dumps(r))
            f.write(b"\n")
            n += 1
    return n


def export_truth(world: "World", directory) -> dict:
    """Write the ground truth as JSONL files (+ meta.json); returns row counts per file."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "erc20_transfers_polymarket.jsonl": _write_jsonl(out / "erc20_transfers_polymarket.jsonl",
                                                        erc20_rows(world, "polymarket")),
        "erc20_transfers_all.jsonl": _write_jsonl(out / "erc20_transfers_all.jsonl", erc20_rows(world, "all")),
        "erc1155_transfers.jsonl": _write_jsonl(out / "erc1155_transfers.jsonl", erc1155_rows(world)),
        "condition_resolutions.jsonl": _write_jsonl(out / "condition_resolutions.jsonl", resolution_rows(world)),
        "token_registrations.jsonl": _write_jsonl(out / "token_registrations.jsonl", registration_rows(world)),
        "days.jsonl": _write_jsonl(out / "days.jsonl", day_rows(world)),
    }
    pnl = list(pnl_rows(world))
    counts["pnl.jsonl"] = _write_jsonl(out / "pnl.jsonl", pnl)
    rate, wins, counted = win_rate(pnl)
    meta = {
        "seed": world.seed,
        "density": world.density_name,
        "start_date": world.start_date.isoformat(),
        "days": world.days,
        "head": world.head,
        "chain_id": world.chain_id,
        "simulated": True,
        "win_rate": rate,
        "positions_counted": counted,
        "positions_won": wins,
        "rows": counts,
    }
    tmp = out / "meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / "meta.json")
    return counts
