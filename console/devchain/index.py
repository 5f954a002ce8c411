"""One day's logs, serialised once and indexed for fast eth_getLogs.

Why: a 10,000-log response must be served in tens of milliseconds. Each log is turned into its
final JSON bytes at generation time; a query only selects positions and joins bytes. Selection
uses a per-day index (address, topic0) -> positions + their block numbers, so a block range is
two bisects per key; the remaining topic positions (OR-lists, wildcards) are checked only on the
candidates. Filter semantics follow geth: an address list and every topic position are OR-sets,
`null` is a wildcard, and a log with fewer topics than the filter has positions never matches.
"""

from __future__ import annotations

import bisect
import hashlib
from array import array
from dataclasses import dataclass
from heapq import merge
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .world import World


@dataclass(frozen=True)
class FilterSpec:
    """A normalised eth_getLogs filter (lowercase; None = wildcard)."""

    addresses: frozenset[str] | None = None
    topics: tuple[frozenset[str] | None, ...] = ()

    @classmethod
    def from_params(cls, address=None, topics=None) -> "FilterSpec":
        addrs = None
        if address is not None:
            if isinstance(address, str):
                addrs = frozenset([address.lower()])
            else:
                addrs = frozenset(a.lower() for a in address)
        tps: list[frozenset[str] | None] = []
        for t in topics or ():
            if t is None:
                tps.append(None)
            elif isinstance(t, str):
                tps.append(frozenset([t.lower()]))
            else:
                vals = [x.lower() for x in t if x is not None]
                # an empty OR-list or one containing null matches anything (geth)
                tps.append(frozenset(vals) if vals and len(vals) == len(t) else None)
        return cls(addrs, tuple(tps))

    def matches(self, address: str, topics: tuple) -> bool:
        """Reference semantics for one log (used by tests as the brute-force oracle too)."""
        if self.addresses is not None and address not in self.addresses:
            return False
        if len(self.topics) > len(topics):
            return False
        for want, have in zip(self.topics, topics):
            if want is not None and have not in want:
                return False
        return True


class DayLogs:
    """All logs of one UTC day of the world, in (block, logIndex) order."""

    __slots__ = ("day_idx", "start", "end", "blocks", "raw", "addr", "topics", "kind", "index",
                 "block_txs", "log_index", "tx_hash")

    def __init__(self, day_idx: int, start: int, end: int):
        self.day_idx = day_idx
        self.start = start
        self.end = end
        self.blocks = array("q")
        self.raw: list[bytes] = []
        self.addr: list[str] = []
        self.topics: list[tuple] = []
        self.kind = bytearray()
        self.log_index = array("l")
        self.tx_hash: list[str] = []
        self.index: dict[tuple[str, str | None], tuple[list[int], array]] = {}
        self.block_txs: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self.raw)

    def select(self, from_block: int, to_block: int, spec: FilterSpec | None) -> list[int]:
        if from_block > self.end or to_block < self.start:
            return []
        if spec is None or (spec.addresses is None and not spec.topics):
            lo = bisect.bisect_left(self.blocks, from_block)
            hi = bisect.bisect_right(self.blocks, to_block)
            return list(range(lo, hi))
        addrs = spec.addresses
        t0 = spec.topics[0] if spec.topics else None
        parts = []
        for key, (pos, blks) in self.index.items():
            if addrs is not None and key[0] not in addrs:
                continue
            if t0 is not None and key[1] not in t0:
                continue
            lo = bisect.bisect_left(blks, from_block)
            hi = bisect.bisect_right(blks, to_block)
            if lo < hi:
                parts.append(pos[lo:hi])
        if not parts:
            return []
        out = parts[0] if len(parts) == 1 else list(merge(*parts))
        need = len(spec.topics)
        checks = [(i, s) for i, s in enumerate(spec.topics) if i > 0 and s is not None]
        if need > 1 or (need == 1 and t0 is None):
            tops = self.topics
            if checks:
                if len(checks) == 1 and need <= checks[0][0] + 1:
                    i, s = checks[0]
                    out = [p for p in out if len(tops[p]) > i and tops[p][i] in s]
                else:
                    out = [p for p in out if len(tops[p]) >= need and all(tops[p][i] in s for i, s in checks)]
            else:
                out = [p for p in out if len(tops[p]) >= need]
        return out


def serialize_day(world: "World", d: int, start: int, end: int, txs: list[tuple]) -> DayLogs:
    """Turn sorted (block, gkey, seq, logs) txs into a DayLogs with JSON bytes and an index."""
    dl = DayLogs(d, start, end)
    raw, blocks, addrs, tops, kinds = dl.raw, dl.blocks, dl.addr, dl.topics, dl.kind
    log_index, tx_hashes = dl.log_index, dl.tx_hash
    block_txs = dl.block_txs
    seed_b = b"tx" + str(world.seed).encode()
    cur = -1
    txi = li = 0
    bn = bh = bts = ""
    blist: list[str] = []
    blake = hashlib.blake2b
    for blk, _g, _seq, logs in txs:
        if blk != cur:
            cur = blk
            txi = li = 0
            bn = hex(blk)
            bh = world.block_hash(blk)
            bts = f'"blockTimestamp":"{hex(world.block_timestamp(blk))}",' if world.log_timestamps else ""
            blist = block_txs[blk] = []
        th = "0x" + blake(seed_b + blk.to_bytes(8, "little") + txi.to_bytes(4, "little"), digest_size=32).hexdigest()
        blist.append(th)
        mid = f'"blockNumber":"{bn}",{bts}"blockHash":"{bh}","transactionHash":"{th}","transactionIndex":"{hex(txi)}","logIndex":"'
        for a, t, data, kind in logs:
            tj = '"' + '","'.join(t) + '"' if t else ""
            raw.append(f'{{"address":"{a}","topics":[{tj}],"data":"{data}",{mid}{hex(li)}","removed":false}}'.encode())
            blocks.append(blk)
            addrs.append(a)
            tops.append(t)
            kinds.append(kind)
            log_index.append(li)
            tx_hashes.append(th)
            li += 1
        txi += 1
    index = dl.index
    for p, (a, t) in enumerate(zip(addrs, tops)):
        key = (a, t[0] if t else None)
        ent = index.get(key)
        if ent is None:
            ent = index[key] = ([], array("q"))
        ent[0].append(p)
        ent[1].append(blocks[p])
    return dl
