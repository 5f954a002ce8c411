"""A tiny hand-built chain for the gate and rebuild tests: rows shaped exactly like the
engine's decoded logs, inserted straight into chDB (no RPC, no engine)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from console.protocol import DEFAULT_PROFILE, ZERO_ADDRESS

PROFILE = DEFAULT_PROFILE
USDC = PROFILE.collateral[0].address
CTF = PROFILE.ctf[0].address
EXCHANGE = PROFILE.exchanges[0].address
ADAPTER = PROFILE.adapters[0].address
ZERO = ZERO_ADDRESS
E6 = 1_000_000
BLOCKS_PER_DAY = 1000
START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
STREAMS = ("usdc_from", "usdc_to", "ctf_transfers", "ctf_resolutions", "token_registrations")


async def hold_merges(store, tables) -> None:
    """No background merge on these tables (an OPTIMIZE still merges): every insert stays its
    own part, so whether something compacted them is not left to the merge scheduler."""
    for table in tables:
        await store.command(f"ALTER TABLE {{db}}.{table} MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1")


def addr(n: int) -> str:
    return "0x" + f"{n:040x}"


@dataclass
class Chain:
    block: int = 10
    erc20: list[dict] = field(default_factory=list)
    erc1155: list[dict] = field(default_factory=list)
    resolutions: list[dict] = field(default_factory=list)
    registrations: list[dict] = field(default_factory=list)
    _tx: str = ""
    _log: int = 0
    _ntx: int = 0

    # --- txs ------------------------------------------------------------------------------
    def tx(self, blocks: int = 1) -> str:
        self.block += blocks
        self._ntx += 1
        self._tx = "0x" + f"{self._ntx:064x}"
        self._log = 0
        return self._tx

    def _base(self) -> dict:
        b = self.block
        row = {"tx_hash": self._tx, "log_index": self._log, "block_number": b,
               "block_time": START + dt.timedelta(seconds=2 * b), "day_idx": b // BLOCKS_PER_DAY}
        self._log += 1
        return row

    def usdc(self, frm: str, to: str, value: int) -> None:
        self.erc20.append({**self._base(), "token": USDC, "from_address": frm, "to_address": to,
                           "value": value})

    def single(self, frm: str, to: str, token: int, value: int, operator: str = EXCHANGE) -> None:
        self.erc1155.append({**self._base(), "contract": CTF, "operator": operator,
                             "from_address": frm, "to_address": to, "token_id": token,
                             "value": value, "batch_index": 0})

    def batch(self, frm: str, to: str, tokens: list[int], values: list[int], operator: str) -> None:
        base = self._base()
        for i, (t, v) in enumerate(zip(tokens, values)):
            self.erc1155.append({**base, "contract": CTF, "operator": operator,
                                 "from_address": frm, "to_address": to, "token_id": t,
                                 "value": v, "batch_index": i})

    # --- protocol actions -------------------------------------------------------------------
    def register(self, token0: int, token1: int, condition: str) -> None:
        self.tx()
        self.registrations.append({**self._base(), "contract": EXCHANGE, "token0": token0,
                                   "token1": token1, "condition_id": condition})

    def resolve(self, condition: str, payouts: list[int]) -> None:
        self.tx()
        self.resolutions.append({**self._base(), "contract": CTF, "condition_id": condition,
                                 "oracle": addr(0xAAA), "question_id": "0x" + "11" * 32,
                                 "outcome_slot_count": len(payouts), "payout_numerators": payouts})

    def trade(self, buyer: str, seller: str, token: int, shares: int, usdc: int) -> None:
        """One CLOB fill through the exchange."""
        self.tx()
        self.usdc(buyer, EXCHANGE, usdc)
        self.usdc(EXCHANGE, seller, usdc)
        self.single(seller, EXCHANGE, token, shares)
        self.single(EXCHANGE, buyer, token, shares)

    def split(self, wallet: str, tokens: tuple[int, int], amount: int) -> None:
        self.tx()
        self.usdc(wallet, CTF, amount)
        self.batch(ZERO, wallet, list(tokens), [amount, amount], operator=wallet)

    def merge(self, wallet: str, tokens: tuple[int, int], amount: int) -> None:
        self.tx()
        self.batch(wallet, ZERO, list(tokens), [amount, amount], operator=wallet)
        self.usdc(CTF, wallet, amount)

    def redeem(self, wallet: str, token: int, amount: int, payout: int) -> None:
        self.tx()
        self.single(wallet, ZERO, token, amount, operator=wallet)
        if payout:
            self.usdc(CTF, wallet, payout)

    def gift(self, frm: str, to: str, token: int, amount: int) -> None:
        self.tx()
        self.single(frm, to, token, amount, operator=frm)

    # --- loading ------------------------------------------------------------------------------
    def days(self) -> list[int]:
        rows = self.erc20 + self.erc1155 + self.resolutions + self.registrations
        return sorted({r["day_idx"] for r in rows}) or [0]

    async def load(self, store, *, claim_id: int = 1, ledger: bool = True) -> None:
        for table, rows in (("erc20_transfers", self.erc20), ("erc1155_transfers", self.erc1155),
                            ("condition_resolutions", self.resolutions),
                            ("token_registrations", self.registrations)):
            if rows:
                await store.insert_columns(table, {k: [r[k] for r in rows] for k in rows[0]})
        await load_days(store, range(0, max(self.days()) + 1), claim_id=claim_id, ledger=ledger,
                        counts=self._counts())

    def _counts(self) -> dict[int, tuple[int, int]]:
        out: dict[int, list[int]] = {}
        for r in self.erc20:
            out.setdefault(r["day_idx"], [0, 0])[0] += 1
        for r in self.erc1155:
            out.setdefault(r["day_idx"], [0, 0])[1] += 1
        return {k: (v[0], v[1]) for k, v in out.items()}


async def load_days(store, day_indices, *, claim_id: int = 1, ledger: bool = True,
                    counts: dict | None = None, status: str = "COMPLETE",
                    blocks_per_day: int = BLOCKS_PER_DAY, streams=STREAMS,
                    day_bounds: dict[int, tuple[int, int]] | None = None) -> None:
    """Checkpoint COMPLETE + day_blocks + a ledger that tiles each day (one range per stream)."""
    at = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
    cps, dbs, led = [], [], []
    counts = counts or {}
    for d in day_indices:
        s, e = (day_bounds or {}).get(d, (d * blocks_per_day, d * blocks_per_day + blocks_per_day - 1))
        day = (START + dt.timedelta(days=d)).date()
        c20, c1155 = counts.get(d, (0, 0))
        cps.append({"day_idx": d, "day": day, "start_block": s, "end_block": e, "status": status,
                    "worker_id": d % 8, "epoch": 1, "claim_id": claim_id, "erc20_count": c20,
                    "erc1155_count": c1155, "attempts": 1, "last_error": "", "updated_at": at})
        dbs.append({"day_idx": d, "day": day, "start_block": s, "end_block": e, "updated_at": at})
        if ledger:
            for st in streams:
                led.append({"day_idx": d, "stream": st, "from_block": s, "to_block": e,
                            "log_count": 0, "claim_id": claim_id, "fetched_at": at})
    await store.insert_rows("backfill_checkpoint_versions", cps)
    await store.insert_rows("day_blocks_versions", dbs)
    if led:
        await store.insert_rows("coverage_ledger_versions", led)


# --- a devchain world, loaded from its ground truth -------------------------------------------
_INT_COLUMNS = {"value", "token_id", "token0", "token1"}


def _columns(rows: list[dict]) -> dict[str, list]:
    cols: dict[str, list] = {k: [] for k in rows[0]}
    for r in rows:
        for k, v in r.items():
            if k in _INT_COLUMNS:
                v = int(v)
            elif k == "block_time":
                v = dt.datetime.fromtimestamp(v, dt.timezone.utc)
            elif k == "payout_numerators":
                v = [int(x) for x in v]
            cols[k].append(v)
    return cols


async def load_world(store, world, *, scope: str = "polymarket", claim_id: int = 1) -> dict:
    """Insert a world's truth rows as the engine would have written them, plus run state that
    says every day is COMPLETE and tiled. Returns the truth pnl rows."""
    for table in ("erc20_transfers", "erc1155_transfers", "condition_resolutions",
                  "token_registrations"):
        rows = world.truth_rows(table, scope=scope) if table == "erc20_transfers" else world.truth_rows(table)
        if rows:
            await store.insert_columns(table, _columns(rows))
    days = world.truth_rows("days")
    bounds = {d["day_idx"]: (d["start_block"], d["end_block"]) for d in days}
    counts = {d["day_idx"]: (d["erc20_polymarket"] if scope == "polymarket" else d["erc20_all"],
                             d["erc1155"]) for d in days}
    await load_days(store, [d["day_idx"] for d in days], claim_id=claim_id, counts=counts,
                    day_bounds=bounds)
    return world.truth_rows("pnl")


async def compare_pnl(store, truth: list[dict]) -> tuple[int, list]:
    """Compare `positions` with the truth's PnL rows on every all-HIGH position.

    Returns (positions compared, mismatches as (truth, ours) pairs); a truth position missing
    from `positions` is a mismatch too.
    """
    ours = {(r["wallet"], int(r["token_id"])): r for r in await store.query_dicts(
        "SELECT wallet, token_id, realized_pnl, all_high, amount, settled FROM {db}.positions")}
    compared, bad = 0, []
    for t in truth:
        p = ours.get((t["wallet"], int(t["token_id"])))
        if p is None:
            bad.append((t, None))
            continue
        if not p["all_high"]:
            continue
        compared += 1
        if p["realized_pnl"] != t["realized_pnl"]:
            bad.append((t, p))
    return compared, bad
