"""The block timeline of the simulated chain: timestamps, hashes, day boundaries.

Why this shape: a `full` world has ~45M blocks. Storing a timestamp per block in a Python list
would cost gigabytes, so blocks are grouped in chunks of CHUNK blocks whose *total* duration is
drawn from a seeded stream (mean 2 s/block). Only one int per chunk is kept (the chunk's start
time, in an `array('q')`, extended lazily). The deltas inside a chunk are re-derived on demand
from a hash of (seed, chunk) and cached in a small LRU, so `timestamp(n)` is O(1) amortised and
`first_block_at_or_after(ts)` is a bisect over chunk starts plus a bisect inside one chunk.

Jitter is real: inside a chunk some deltas are 0 (consecutive blocks share a timestamp) and
some are 3-4 s, which is what makes day-boundary resolution non-trivial for the engine.

Block hashes embed the block number in their last 8 bytes so a `blockHash` filter can be mapped
back to a number in O(1) and verified against the recomputed hash.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import random
from array import array
from itertools import accumulate

CHUNK = 64  # blocks per chunk
NOMINAL = 2 * CHUNK  # seconds per chunk on average (2 s per block)
_CACHE_MAX = 8192


def day_start_ts(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


class Chain:
    """Timestamps and hashes of blocks 0..head. Block 0 is a bit before `start_date` 00:00Z."""

    def __init__(self, seed: int, start_date: dt.date, days: int, tail_blocks: int = 1200):
        self.seed = seed
        self.start_date = start_date
        self.days = days
        rng = random.Random(f"chain-genesis-{seed}")
        self.genesis_ts = day_start_ts(start_date) - 3600 - rng.randrange(0, 900)
        self._rng = random.Random(f"chain-chunks-{seed}")
        self._starts = array("q", [self.genesis_ts])  # start time of chunk i
        self._chunk_cache: dict[int, list[int]] = {}
        self._seed_bytes = f"{seed}".encode()
        self._day_bounds: dict[int, tuple[int, int]] = {}
        end_ts = day_start_ts(start_date + dt.timedelta(days=days))
        self.last_day_block = self.first_block_at_or_after(end_ts) - 1
        self.head = self.last_day_block + tail_blocks

    # -- chunk bookkeeping -------------------------------------------------------------------
    def _extend(self, chunk: int) -> None:
        """Make sure the start time of `chunk` (and chunk+1) is known."""
        starts = self._starts
        while len(starts) <= chunk + 1:
            n = max(4096, len(starts) // 4)
            jit = self._rng.randbytes(n)
            last = starts[-1]
            # chunk duration = NOMINAL + jitter in [-3, +3]
            vals = accumulate((NOMINAL + (b % 7) - 3 for b in jit), initial=last)
            next(vals)  # `initial` is already the last known start
            starts.extend(vals)

    def _chunk_offsets(self, chunk: int) -> list[int]:
        """Offsets (seconds from chunk start) of the CHUNK blocks of `chunk`, non-decreasing."""
        off = self._chunk_cache.get(chunk)
        if off is not None:
            return off
        self._extend(chunk)
        total = self._starts[chunk + 1] - self._starts[chunk]
        h = hashlib.blake2b(self._seed_bytes + chunk.to_bytes(8, "little"), digest_size=64).digest()
        deltas = [2] * CHUNK
        # pair moves keep the sum: make some 0 s (shared timestamps) and 3-4 s gaps
        for i in range(0, 24, 2):
            a, b = h[i] % CHUNK, h[i + 1] % CHUNK
            if a == b:
                continue
            x = 1 + (h[24 + i // 2] & 1)
            if deltas[a] - x >= 0 and deltas[b] + x <= 4:
                deltas[a] -= x
                deltas[b] += x
        diff = total - 2 * CHUNK
        j = 40
        while diff != 0:
            k = h[j % 64] % CHUNK if j < 64 else (j * 7) % CHUNK
            j += 1
            if diff > 0 and deltas[k] < 4:
                deltas[k] += 1
                diff -= 1
            elif diff < 0 and deltas[k] > 0:
                deltas[k] -= 1
                diff += 1
        # offsets: block i of the chunk is at sum(deltas[:i]); deltas[CHUNK-1] leads to next chunk
        off = list(accumulate(deltas[:-1], initial=0))
        if len(self._chunk_cache) >= _CACHE_MAX:
            self._chunk_cache.clear()
        self._chunk_cache[chunk] = off
        return off

    # -- public API ------------------------------------------------------------------------
    def timestamp(self, n: int) -> int:
        if n < 0:
            raise ValueError("negative block number")
        c, i = divmod(n, CHUNK)
        off = self._chunk_offsets(c)
        return self._starts[c] + off[i]

    def first_block_at_or_after(self, ts: int) -> int:
        """Smallest block number whose timestamp is >= ts (0 if ts <= genesis)."""
        if ts <= self.genesis_ts:
            return 0
        # make sure chunk starts cover ts
        while self._starts[-1] < ts:
            self._extend(len(self._starts) + 4096)
        c = bisect.bisect_left(self._starts, ts) - 1  # chunk whose start < ts
        if c < 0:
            return 0
        off = self._chunk_offsets(c)
        i = bisect.bisect_left(off, ts - self._starts[c])
        return c * CHUNK + i  # i == CHUNK means first block of next chunk (start >= ts)

    def block_hash(self, n: int) -> str:
        h = hashlib.blake2b(b"blk" + self._seed_bytes + n.to_bytes(8, "little"), digest_size=24).hexdigest()
        return "0x" + h + n.to_bytes(8, "big").hex()

    def block_from_hash(self, block_hash: str) -> int | None:
        bh = (block_hash or "").lower()
        if len(bh) != 66 or not bh.startswith("0x"):
            return None
        try:
            n = int(bh[-16:], 16)
        except ValueError:
            return None
        if n > self.head or self.block_hash(n) != bh:
            return None
        return n

    def day_bounds(self, day_idx: int) -> tuple[int, int]:
        b = self._day_bounds.get(day_idx)
        if b is None:
            day = self.start_date + dt.timedelta(days=day_idx)
            s = self.first_block_at_or_after(day_start_ts(day))
            e = self.first_block_at_or_after(day_start_ts(day + dt.timedelta(days=1))) - 1
            b = (s, e)
            self._day_bounds[day_idx] = b
        return b

    def day_of_block(self, n: int) -> int | None:
        """Day index (relative to start_date) of block n, or None outside the world's days."""
        if n > self.last_day_block:
            return None
        ts = self.timestamp(n)
        d = (dt.datetime.fromtimestamp(ts, dt.timezone.utc).date() - self.start_date).days
        return d if 0 <= d < self.days else None
