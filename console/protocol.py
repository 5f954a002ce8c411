"""The protocol profile: which contracts and events the backfill follows.

Defaults are Polymarket on Polygon. Everything here is plain data so that `backfill.toml`
can override it (another chain, a local node with its own deployments) and so that the
devchain, the engine and the rebuild all read the same addresses.

Event topic0 values are the keccak-256 of the canonical signatures; they are constants
here (hashing at import would pull in eth-utils on every CLI start) and a unit test checks
them against keccak.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# keccak256 of the event signatures (checked by tests/test_protocol.py).
TOPIC_TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TOPIC_TRANSFER_SINGLE = "0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62"
TOPIC_TRANSFER_BATCH = "0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb"
TOPIC_CONDITION_RESOLUTION = "0xb44d84d3289691f71497564b85d4233648d9dbae8cbdbb4329f301c3a0185894"
TOPIC_TOKEN_REGISTERED = "0xbc9a2432e8aeb48327246cddd6e872ef452812b4243c04e6bfb786a2cd8faf0d"
TOPIC_APPROVAL = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
TOPIC_APPROVAL_FOR_ALL = "0x17307eab39ab6107e8899845ad3d59bd9653f200f220920489ca2b5937696c31"

EVENT_SIGNATURES = {
    TOPIC_TRANSFER: "Transfer(address,address,uint256)",
    TOPIC_TRANSFER_SINGLE: "TransferSingle(address,address,address,uint256,uint256)",
    TOPIC_TRANSFER_BATCH: "TransferBatch(address,address,address,uint256[],uint256[])",
    TOPIC_CONDITION_RESOLUTION: "ConditionResolution(bytes32,address,bytes32,uint256,uint256[])",
    TOPIC_TOKEN_REGISTERED: "TokenRegistered(uint256,uint256,bytes32)",
    TOPIC_APPROVAL: "Approval(address,address,uint256)",
    TOPIC_APPROVAL_FOR_ALL: "ApprovalForAll(address,address,bool)",
}

ZERO_ADDRESS = "0x" + "0" * 40
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def is_address(value: str) -> bool:
    return bool(_ADDRESS_RE.match(value or ""))


def address_topic(address: str) -> str:
    """An address as a 32-byte topic (left-padded, lowercase)."""
    return "0x" + "0" * 24 + address.lower()[2:]


@dataclass(frozen=True)
class Deployment:
    """A contract address and the UTC dates it is active for (inclusive start, exclusive end).

    Active ranges let one profile say "USDC.e until 2026-04-28, pUSD after"; a stream only
    asks for a contract on the days it is active.
    """

    address: str
    active_from: dt.date | None = None
    active_until: dt.date | None = None

    def active_on(self, day: dt.date) -> bool:
        if self.active_from and day < self.active_from:
            return False
        if self.active_until and day >= self.active_until:
            return False
        return True


@dataclass(frozen=True)
class Stream:
    """One eth_getLogs filter. `topics` follows JSON-RPC: each position None, a hex or a list."""

    name: str
    kind: str  # "erc20" | "erc1155" | "resolution" | "registration"
    addresses: tuple[str, ...]
    topics: tuple[object, ...]

    def filter_params(self) -> dict:
        addr: object = self.addresses[0] if len(self.addresses) == 1 else list(self.addresses)
        topics = [list(t) if isinstance(t, tuple) else t for t in self.topics]
        return {"address": addr, "topics": topics}


POLYMARKET_SWITCH = dt.date(2026, 4, 28)


@dataclass(frozen=True)
class ProtocolProfile:
    name: str = "polymarket-polygon"
    chain_id: int = 137
    finality_blocks: int = 200
    collateral: tuple[Deployment, ...] = (
        Deployment("0x2791bca1f2de4661ed88a30c99a7a9449aa84174", None, POLYMARKET_SWITCH),  # USDC.e
        Deployment("0xc011a7e12a19f7b1f670d46f03b03f3342e82dfb", POLYMARKET_SWITCH, None),  # pUSD
    )
    ctf: tuple[Deployment, ...] = (Deployment("0x4d97dcd97ec945f40cf65f87097ace5ea0476045"),)
    exchanges: tuple[Deployment, ...] = (
        Deployment("0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e", None, POLYMARKET_SWITCH),  # CTF Exchange
        Deployment("0xc5d563a36ae78145c45a50134d48a1215220f80a", None, POLYMARKET_SWITCH),  # NegRisk CTF Exchange
        Deployment("0xe111180000d2663c0091e4f400237545b87b996b", POLYMARKET_SWITCH, None),
        Deployment("0xe2222d279d744050d28e00520010520000310f59", POLYMARKET_SWITCH, None),
    )
    adapters: tuple[Deployment, ...] = (
        Deployment("0xd91e80cf2e7be2e162c6513ced06f1dd0da35296"),  # NegRiskAdapter
        Deployment("0x3a3bd7bb9528e159577f7c2e685cc81a765002e2"),  # WrappedCollateral
    )
    # Addresses whose flows are plumbing, not a wallet's position (excluded from net flows).
    extra_infrastructure: tuple[str, ...] = ()

    def active(self, group: tuple[Deployment, ...], day: dt.date) -> tuple[str, ...]:
        return tuple(d.address for d in group if d.active_on(day))

    def known_contracts(self, day: dt.date) -> tuple[str, ...]:
        """The Polymarket contracts a collateral transfer must touch to be ours (usdc_scope=polymarket)."""
        return (
            self.active(self.ctf, day)
            + self.active(self.exchanges, day)
            + self.active(self.adapters, day)
        )

    def infrastructure(self) -> tuple[str, ...]:
        """Every address excluded from per-wallet net flows, whatever the date."""
        groups = self.ctf + self.exchanges + self.adapters
        return tuple(sorted({d.address for d in groups} | set(self.extra_infrastructure) | {ZERO_ADDRESS}))

    def all_collateral(self) -> tuple[str, ...]:
        return tuple(d.address for d in self.collateral)

    def streams(self, day: dt.date, usdc_scope: str = "polymarket") -> tuple[Stream, ...]:
        """The eth_getLogs filters for one UTC day, in a fixed order (the ledger keys on names)."""
        collateral = self.active(self.collateral, day)
        ctf = self.active(self.ctf, day)
        exchanges = self.active(self.exchanges, day)
        out: list[Stream] = []
        if collateral:
            if usdc_scope == "all":
                out.append(Stream("usdc", "erc20", collateral, (TOPIC_TRANSFER,)))
            else:
                contracts = tuple(address_topic(a) for a in self.known_contracts(day))
                out.append(Stream("usdc_from", "erc20", collateral, (TOPIC_TRANSFER, contracts)))
                out.append(Stream("usdc_to", "erc20", collateral, (TOPIC_TRANSFER, None, contracts)))
        if ctf:
            out.append(
                Stream("ctf_transfers", "erc1155", ctf, ((TOPIC_TRANSFER_SINGLE, TOPIC_TRANSFER_BATCH),))
            )
            out.append(Stream("ctf_resolutions", "resolution", ctf, (TOPIC_CONDITION_RESOLUTION,)))
        if exchanges:
            out.append(Stream("token_registrations", "registration", exchanges, (TOPIC_TOKEN_REGISTERED,)))
        return tuple(out)


DEFAULT_PROFILE = ProtocolProfile()
