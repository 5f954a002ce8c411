"""The one job every tool runs, and how a tool's output is scored (project venv only).

The job: over the same devchain days, USDC.e `Transfer` logs touching a Polymarket contract
(from or to: the engine's `usdc_from` + `usdc_to` streams) and the CTF's
`TransferSingle`/`TransferBatch` logs (`ctf_transfers`). Scoring compares (tx_hash, log_index)
keys with the world's ground truth (`World.truth_rows`), per table; a peer given a broader
filter than the job (all USDC transfers) is scored on the rows that touch a Polymarket contract
only, as a user would filter them afterwards.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import minimum_calls  # noqa: E402  (bench/ingest.py: the cap-bound minimum)

from console.devchain.faults import get_profile  # noqa: E402
from console.devchain.world import build_world  # noqa: E402
from console.protocol import (  # noqa: E402
    DEFAULT_PROFILE, TOPIC_TRANSFER, TOPIC_TRANSFER_BATCH, TOPIC_TRANSFER_SINGLE, address_topic,
)

JOB_STREAMS = ("usdc_from", "usdc_to", "ctf_transfers")


@dataclass
class Job:
    """A devchain world (density, seed, first day, days) and the block range of its days."""

    density: str
    seed: int
    start_date: dt.date | None  # None: the density's default calendar
    days: int | None
    warm: bool = True  # generate every day before the clock starts

    def world(self):
        return build_world(self.density, seed=self.seed, start_date=self.start_date, days=self.days)

    def spawn_kwargs(self) -> dict:
        kw: dict = {"density": self.density, "seed": self.seed}
        if self.start_date is not None:
            kw["start_date"] = self.start_date
        if self.days is not None:
            kw["days"] = self.days
        return kw


def job_for(mode: str, days: int | None = None) -> Job:
    if mode == "quick":  # the `small` world: 3 days x ~2k relevant logs
        return Job("small", 1, None, None)
    if mode == "long":  # the `full` world's first `days` days (5k-50k relevant logs a day), not
        # warmed up: the devchain generates each day when first asked, so the provider, not the
        # tool, sets the pace — as on a real provider for a long backfill
        return Job("full", 1, None, days, warm=False)
    # four `demo` days around US election night 2024-11-06 (the spike larger than a 10K cap)
    return Job("demo", 1, dt.date(2024, 11, 4), 4)


@dataclass
class Spec:
    """Everything a tool needs to run the job, as plain data (passed to the peers as JSON)."""

    first_block: int
    last_block: int  # inclusive
    usdc: str
    ctf: str
    contracts: list[str]  # Polymarket contracts a USDC transfer must touch
    topic_transfer: str
    topics_1155: list[str]
    contract_topics: list[str]

    def to_json(self) -> dict:
        return dict(self.__dict__)


def spec_for(world) -> Spec:
    day0 = world.day_date(0)
    for d in range(world.days):  # the job's contracts must not change inside the window
        assert DEFAULT_PROFILE.known_contracts(world.day_date(d)) == DEFAULT_PROFILE.known_contracts(day0)
    contracts = list(DEFAULT_PROFILE.known_contracts(day0))
    return Spec(
        first_block=world.day_bounds(0)[0], last_block=world.day_bounds(world.days - 1)[1],
        usdc=DEFAULT_PROFILE.active(DEFAULT_PROFILE.collateral, day0)[0],
        ctf=DEFAULT_PROFILE.ctf[0].address, contracts=contracts, topic_transfer=TOPIC_TRANSFER,
        topics_1155=[TOPIC_TRANSFER_SINGLE, TOPIC_TRANSFER_BATCH],
        contract_topics=[address_topic(a) for a in contracts],
    )


def job_minimum(world, profile: str) -> dict[str, int]:
    """The cap-bound minimum eth_getLogs calls per stream (bench/ingest.py), all 5 engine streams."""
    f = get_profile(profile)
    return minimum_calls(world, f.cap, f.range_cap, "polymarket")


def truth_keys(world) -> dict[str, set[tuple[str, int]]]:
    """(tx_hash, log_index) per table: what a complete run must hold."""
    out = {}
    for table in ("erc20_transfers", "erc1155_transfers"):
        out[table] = {(r["tx_hash"].lower(), int(r["log_index"])) for r in world.truth_rows(table, "polymarket")}
    return out


def classify_logs(logs, spec: Spec, first_block: int, last_block: int) -> dict[str, set[tuple[str, int]]]:
    """Raw logs (dicts with address, topic0..2, transaction_hash, log_index, block_number, as
    lowercase hex / ints) -> keys per table, keeping only what the job asks for: a USDC Transfer
    with a Polymarket contract as sender or receiver, any CTF TransferSingle/Batch."""
    pm = set(spec.contract_topics)
    t1155 = set(spec.topics_1155)
    erc20: set = set()
    erc1155: set = set()
    for lg in logs:
        bn = int(lg["block_number"])
        if bn < first_block or bn > last_block:
            continue
        addr = lg["address"].lower()
        t0 = (lg.get("topic0") or "").lower()
        key = (lg["transaction_hash"].lower(), int(lg["log_index"]))
        if addr == spec.usdc and t0 == spec.topic_transfer:
            if (lg.get("topic1") or "").lower() in pm or (lg.get("topic2") or "").lower() in pm:
                erc20.add(key)
        elif addr == spec.ctf and t0 in t1155:
            erc1155.add(key)
    return {"erc20_transfers": erc20, "erc1155_transfers": erc1155}


def score(found: dict[str, set], truth: dict[str, set]) -> dict:
    """found/expected per table (exact key match), and keys found that the truth does not hold."""
    out = {}
    for table, want in truth.items():
        got = found.get(table)
        if got is None:
            out[table] = {"expected": len(want), "found": None, "extra": None}
            continue
        out[table] = {"expected": len(want), "found": len(got & want), "extra": len(got - want)}
    return out
