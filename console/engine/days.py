"""UTC day -> [first_block, last_block] (DESIGN §6.1).

A *boundary* is "the first block whose timestamp is >= T" for a UTC midnight T. Day d spans
[boundary(T0), boundary(T0 + 86400) - 1]. Timestamps are non-decreasing in block number but not
strictly (Polygon blocks can share a timestamp): the search keeps the invariant
``ts(lo) < T <= ts(hi)`` and stops at ``hi == lo + 1``, so a run of equal timestamps at midnight
resolves to its first block.

Search: the bracket starts from every block probed so far (the previous day's boundary is the best
lower bound), then interpolation on timestamps; each probe fetches a small window of blocks
around the interpolated guess in one JSON-RPC batch, so a boundary typically costs 2-4 requests.
Every boundary is looked up in ``cache`` first and stored there once final (``cache`` provides
``async get_boundary(ts) -> int | None`` and ``async put_boundary(ts, block)``).
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from typing import Any

from .errors import DayNotFinal, InvalidResponse

__all__ = ["DayResolver", "midnight_ts", "DayNotFinal"]

_DAY = 86_400
_WINDOW = 2  # probe guess-2 .. guess+2
_SCAN = 48  # when the bracket is this small, fetch every block inside in one batch
_HEAD_TTL = 5.0


def midnight_ts(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


class DayResolver:
    def __init__(self, rpc: Any, cache: Any, *, finality_blocks: int = 200):
        self.rpc = rpc
        self.cache = cache
        self.finality_blocks = finality_blocks
        self._ts: dict[int, int] = {}
        self._known: list[int] = []  # sorted probed blocks
        self._head: tuple[float, int] | None = None  # (monotonic time, head block)
        self.requests = 0  # RPC requests this resolver made (tests, stats)

    # ------------------------------------------------------------------ probing
    def _remember(self, block: int, ts: int) -> None:
        if block not in self._ts:
            bisect.insort(self._known, block)
        self._ts[block] = ts

    async def _probe(self, blocks: list[int]) -> None:
        need = sorted({b for b in blocks if b >= 0 and b not in self._ts})
        if not need:
            return
        self.requests += 1
        if len(need) == 1:
            got = {need[0]: await self.rpc.block_timestamp(need[0])}
        else:
            got = await self.rpc.block_timestamps(need)
        for b in need:
            if b not in got:
                raise InvalidResponse(f"no timestamp returned for block {b}")
            self._remember(b, int(got[b]))

    async def head(self) -> int:
        now = time.monotonic()
        if self._head is not None and now - self._head[0] < _HEAD_TTL:
            return self._head[1]
        self.requests += 1
        h = int(await self.rpc.block_number())
        await self._probe([h])
        # Published only once its timestamp is known: a concurrent resolve() reads both.
        self._head = (now, h)
        return h

    # ------------------------------------------------------------------ search
    def _bracket(self, T: int) -> tuple[int | None, int | None]:
        """(largest known block with ts < T, smallest known block with ts >= T)."""
        known, ts = self._known, self._ts
        lo_i, hi_i = 0, len(known)
        while lo_i < hi_i:  # first index with ts >= T
            mid = (lo_i + hi_i) // 2
            if ts[known[mid]] >= T:
                hi_i = mid
            else:
                lo_i = mid + 1
        hi = known[lo_i] if lo_i < len(known) else None
        lo = known[lo_i - 1] if lo_i > 0 else None
        return lo, hi

    def _slope(self) -> float:
        """Seconds per block from the widest pair of known points (2.0 before that)."""
        k = self._known
        if len(k) >= 2 and k[-1] > k[0]:
            s = (self._ts[k[-1]] - self._ts[k[0]]) / (k[-1] - k[0])
            if s > 0:
                return s
        return 2.0

    async def _search(self, T: int, head: int) -> int:
        """First block with timestamp >= T; requires ts(head) >= T."""
        ts = self._ts
        lo, hi = self._bracket(T)
        if hi is None:
            raise DayNotFinal(dt.datetime.fromtimestamp(T, dt.timezone.utc).date(), None, head)
        if lo is None:
            # Gallop down from hi until a block before T (or genesis).
            step = max(1, int((ts[hi] - T) / self._slope()) + 1)
            while True:
                cand = max(0, hi - step)
                await self._probe([cand])
                if ts[cand] >= T:
                    hi = cand
                    if cand == 0:
                        return 0
                    step *= 2
                else:
                    lo = cand
                    break
            lo, hi = self._bracket(T)
            assert lo is not None and hi is not None
        bisect_next = False
        while hi - lo > 1:
            width = hi - lo
            if width - 1 <= _SCAN:
                await self._probe(list(range(lo + 1, hi)))
            else:
                if bisect_next:
                    g = (lo + hi) // 2
                else:
                    tl, th = ts[lo], ts[hi]
                    g = lo + int(round((T - tl) * (hi - lo) / max(1, th - tl)))
                g = min(max(g, lo + 1 + _WINDOW), hi - 1 - _WINDOW)
                await self._probe(list(range(g - _WINDOW, g + _WINDOW + 1)))
            nlo, nhi = self._bracket(T)
            if nlo is None or nhi is None or nhi <= nlo:
                raise InvalidResponse("block timestamps are not monotonic")
            # interpolation that fails to halve the bracket is followed by a bisection step
            bisect_next = (nhi - nlo) * 2 > width and not bisect_next
            lo, hi = nlo, nhi
        return hi

    async def boundary(self, T: int) -> int:
        """First block with timestamp >= T (cached; cached only once final)."""
        b = await self.cache.get_boundary(T)
        if b is not None:
            return int(b)
        head = await self.head()
        if self._ts[head] < T:
            raise DayNotFinal(dt.datetime.fromtimestamp(T, dt.timezone.utc).date(), None, head)
        b = await self._search(T, head)
        if b <= head - self.finality_blocks:
            await self.cache.put_boundary(T, b)
        return b

    async def resolve(self, day: dt.date) -> tuple[int, int]:
        """(first_block, last_block) of UTC ``day``; DayNotFinal if its end is not final yet."""
        T0 = midnight_ts(day)
        T1 = T0 + _DAY
        b0 = await self.cache.get_boundary(T0)
        b1 = await self.cache.get_boundary(T1)
        if b0 is not None and b1 is not None:
            return int(b0), int(b1) - 1
        head = await self.head()
        if b1 is None:
            if self._ts[head] < T1:
                raise DayNotFinal(day, None, head, self.finality_blocks)
            b1 = await self._search(T1, head)
            if b1 - 1 > head - self.finality_blocks:
                raise DayNotFinal(day, b1 - 1, head, self.finality_blocks)
            await self.cache.put_boundary(T1, b1)
        elif int(b1) - 1 > head - self.finality_blocks:  # pragma: no cover - cache holds only final ones
            raise DayNotFinal(day, int(b1) - 1, head, self.finality_blocks)
        b1 = int(b1)
        if b0 is None:
            b0 = await self._search(T0, head)
            await self.cache.put_boundary(T0, b0)
        b0 = int(b0)
        if b1 - 1 < b0:
            raise ValueError(f"day {day.isoformat()} has no blocks (before the chain's genesis?)")
        return b0, b1 - 1
