"""UTC day -> [first_block, last_block] (DESIGN §6.1).

A *boundary* is "the first block whose timestamp is >= T" for a UTC midnight T. Day d spans
[boundary(T0), boundary(T0 + 86400) - 1]. Timestamps are non-decreasing in block number but not
strictly (Polygon blocks can share a timestamp): the search keeps the invariant
``ts(lo) < T <= ts(hi)`` and stops at ``hi == lo + 1``, so a run of equal timestamps at midnight
resolves to its first block.

Search: the bracket starts from every block probed so far (the previous day's boundary is the best
lower bound), then interpolation on timestamps. Providers bill (and count against the rate limit)
every block of a JSON-RPC batch, so probes are sized by how good the guess is: a guess far from
any known block (the first one of a day, a day's worth of blocks from the previous boundary, where
block-time jitter adds up to tens of blocks) fetches that single block; a guess close to a known
block (block times are ~2 s locally) fetches a small window around it, which nearly always
contains the boundary. A day's boundary typically costs 2 requests and ~6 blocks. A guess far off
the mark (the bracket did not halve) is followed by a bisection step, so odd timestamp sequences
stay logarithmic. Concurrent searches for the same midnight (two shards resolving adjacent days)
share one search.
Every boundary is looked up in ``cache`` first and stored there once final (``cache`` provides
``async get_boundary(ts) -> int | None`` and ``async put_boundary(ts, block)``).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import time
from typing import Any

from .errors import DayNotFinal, InvalidResponse

__all__ = ["DayResolver", "midnight_ts", "DayNotFinal"]

_DAY = 86_400
_WINDOW = 2  # near a known block: probe guess-2 .. guess+2
_NEAR = 256  # blocks: a guess this close to a known block is trusted to a few blocks
_SCAN = 8  # when the bracket has at most this many blocks inside, fetch them all in one batch
_RECENT = 6 * 3600  # seconds: a known block this far behind the bracket end gives the recent slope
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
        self._searching: dict[int, asyncio.Future] = {}  # midnight -> its search in flight
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

    def _guess(self, T: int, lo: int, hi: int) -> int:
        """Where in (lo, hi) the first block with ts >= T should be, by interpolation.

        When the bracket's far end is days away (the head, for the newest boundary), the average
        block time over that span is not today's: extrapolate from the near end with the slope of
        the last known ~6 h-3 days next to it instead, when such a block is known (the previous
        day's boundary usually is).
        """
        ts, known = self._ts, self._known
        tl, th = ts[lo], ts[hi]
        g = lo + (T - tl) * (hi - lo) / max(1, th - tl)
        if th - tl > 4 * _DAY:
            key = ts.__getitem__
            if T - tl <= th - T:  # lo is the near end: a known block ~6 h+ before it
                i = bisect.bisect_right(known, tl - _RECENT, key=key)
                k = known[i - 1] if i > 0 else None
                if k is not None and k < lo and tl - ts[k] <= 3 * _DAY:
                    g = lo + (T - tl) * (lo - k) / max(1, tl - ts[k])
            else:  # hi is the near end: a known block ~6 h+ after it
                i = bisect.bisect_left(known, th + _RECENT, key=key)
                k = known[i] if i < len(known) else None
                if k is not None and k > hi and ts[k] - th <= 3 * _DAY:
                    g = hi - (th - T) * (k - hi) / max(1, ts[k] - th)
        return min(max(int(round(g)), lo + 1), hi - 1)

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
        misses = 0  # near guesses in a row whose window missed the boundary
        stalls = 0  # steps in a row that did not halve the bracket
        while hi - lo > 1:
            width = hi - lo
            if width - 1 <= _SCAN:
                await self._probe(list(range(lo + 1, hi)))
            elif stalls >= 4:
                # Interpolation keeps missing (very uneven timestamps): a bisection step.
                await self._probe([(lo + hi) // 2])
                stalls = -1
            else:
                g = self._guess(T, lo, hi)
                if min(g - lo, hi - g) <= _NEAR:
                    # Next to a known block the guess is good to a few blocks: a small window
                    # (both sides of the boundary in one batch), wider after each miss.
                    w = _WINDOW + misses
                    misses += 1
                    await self._probe(list(range(max(lo + 1, g - w), min(hi - 1, g + w) + 1)))
                else:
                    # Far from anything known the guess is off by tens of blocks: one block gets
                    # us next to the boundary; a window would not contain it anyway.
                    await self._probe([g])
            nlo, nhi = self._bracket(T)
            if nlo is None or nhi is None or nhi <= nlo:
                raise InvalidResponse("block timestamps are not monotonic")
            stalls = 0 if (nhi - nlo) * 2 <= width else stalls + 1
            lo, hi = nlo, nhi
        return hi

    async def _find(self, T: int, head: int) -> int:
        """``_search``, shared: shards resolving adjacent days look for the same midnight at once
        (day d's end is day d+1's start), and the second one waits for the first one's answer."""
        while True:
            fut = self._searching.get(T)
            if fut is None:
                break
            b = await asyncio.shield(fut)
            if b is not None:
                return b
            # that search failed (its caller sees why); search again, maybe shared again
        fut = asyncio.get_running_loop().create_future()
        self._searching[T] = fut
        b = None
        try:
            b = await self._search(T, head)
            return b
        finally:
            if self._searching.get(T) is fut:
                del self._searching[T]
            fut.set_result(b)

    async def boundary(self, T: int) -> int:
        """First block with timestamp >= T (cached; cached only once final)."""
        b = await self.cache.get_boundary(T)
        if b is not None:
            return int(b)
        head = await self.head()
        if self._ts[head] < T:
            raise DayNotFinal(dt.datetime.fromtimestamp(T, dt.timezone.utc).date(), None, head)
        b = await self._find(T, head)
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
            b1 = await self._find(T1, head)
            if b1 - 1 > head - self.finality_blocks:
                raise DayNotFinal(day, b1 - 1, head, self.finality_blocks)
            await self.cache.put_boundary(T1, b1)
        elif int(b1) - 1 > head - self.finality_blocks:  # pragma: no cover - cache holds only final ones
            raise DayNotFinal(day, int(b1) - 1, head, self.finality_blocks)
        b1 = int(b1)
        if b0 is None:
            b0 = await self._find(T0, head)
            await self.cache.put_boundary(T0, b0)
        b0 = int(b0)
        if b1 - 1 < b0:
            raise ValueError(f"day {day.isoformat()} has no blocks (before the chain's genesis?)")
        return b0, b1 - 1
