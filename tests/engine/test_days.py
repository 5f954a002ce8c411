"""Day -> block resolution over synthetic timestamp sequences (equal timestamps at midnight)."""

from __future__ import annotations

import bisect
import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.engine.days import DayResolver, midnight_ts
from console.engine.errors import DayNotFinal

D0 = dt.date(2024, 11, 5)
T0 = midnight_ts(D0)


class LazyTs:
    """ts(n) = start + 2n + j(n), j in {0,1,2}: gaps of 0..4 s, monotonic, no big list."""

    def __init__(self, start: int, n: int):
        self.start, self.n = start, n

    def __len__(self):
        return self.n

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.start + 2 * i + (i * 2654435761 >> 7) % 3


class FakeChain:
    """Counting fake of the RpcClient methods DayResolver uses."""

    def __init__(self, ts: list[int]):
        self.ts = ts
        self.calls = 0
        self.items = 0

    async def block_number(self) -> int:
        self.calls += 1
        return len(self.ts) - 1

    async def block_timestamp(self, n: int) -> int:
        self.calls += 1
        self.items += 1
        return self.ts[n]

    async def block_timestamps(self, blocks) -> dict[int, int]:
        self.calls += 1
        blocks = list(blocks)
        self.items += len(blocks)
        return {b: self.ts[b] for b in blocks}

    def truth(self, T: int) -> int:
        lo, hi = 0, len(self.ts)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ts[mid] < T:
                lo = mid + 1
            else:
                hi = mid
        return lo


class Cache:
    def __init__(self):
        self.d: dict[int, int] = {}
        self.puts = 0

    async def get_boundary(self, ts):
        return self.d.get(ts)

    async def put_boundary(self, ts, block):
        assert self.d.get(ts, block) == block
        self.d[ts] = block
        self.puts += 1


def make_chain(start_ts: int, n_blocks: int, seed: int = 1, gaps=(2, 2, 2, 2, 0, 1, 3, 4)) -> list[int]:
    rnd = random.Random(seed)
    ts = [start_ts]
    for _ in range(n_blocks - 1):
        ts.append(ts[-1] + rnd.choice(gaps))
    return ts


def chain_with_equal_midnights(days: int = 4, tail: int = 2000) -> list[int]:
    """~2 s blocks from 10 s before day 0, with runs of equal timestamps exactly at each midnight
    (and just before it)."""
    ts = make_chain(T0 - 10, 43_200 * days + tail, seed=7)
    out = []
    for i, t in enumerate(ts):
        out.append(t)
    # force: at every midnight k, the blocks around it share timestamps
    for k in range(days + 1):
        M = T0 + 86_400 * k
        i = bisect.bisect_left(out, M)
        if i + 3 < len(out):
            out[i] = out[i + 1] = out[i + 2] = M  # three blocks stamped exactly midnight
            out[i - 1] = out[i - 2] = M - 1  # two blocks sharing the last second before it
            for j in range(i + 3, len(out)):  # keep monotonic
                if out[j] < out[j - 1]:
                    out[j] = out[j - 1]
    return out


async def test_equal_timestamps_at_midnight():
    ts = chain_with_equal_midnights()
    rpc = FakeChain(ts)
    r = DayResolver(rpc, Cache(), finality_blocks=200)
    for k in range(4):
        first, last = await r.resolve(D0 + dt.timedelta(days=k))
        assert first == rpc.truth(T0 + 86_400 * k)
        assert ts[first] == T0 + 86_400 * k and ts[first + 1] == ts[first]  # first of the equal run
        assert ts[first - 1] < T0 + 86_400 * k
        assert last == rpc.truth(T0 + 86_400 * (k + 1)) - 1


async def test_days_tile_without_gaps_and_cache_each_boundary_once():
    ts = make_chain(T0 - 5000, 43_200 * 6, seed=3)
    rpc = FakeChain(ts)
    cache = Cache()
    r = DayResolver(rpc, cache)
    ranges = [await r.resolve(D0 + dt.timedelta(days=k)) for k in range(5)]
    for (a0, a1), (b0, b1) in zip(ranges, ranges[1:]):
        assert b0 == a1 + 1
    assert cache.puts == 6  # 6 distinct midnights, each stored once
    calls = rpc.calls
    # resolved again: served from the cache, no RPC at all
    assert [await r.resolve(D0 + dt.timedelta(days=k)) for k in range(5)] == ranges
    assert rpc.calls == calls
    # a new resolver with the same cache (restart): still no RPC
    rpc2 = FakeChain(ts)
    r2 = DayResolver(rpc2, cache)
    assert await r2.resolve(D0 + dt.timedelta(days=2)) == ranges[2]
    assert rpc2.calls == 0


async def test_rpc_calls_per_boundary_are_few():
    ts = LazyTs(T0 - 86_400 * 300, 43_200 * 320)
    rpc = FakeChain(ts)
    r = DayResolver(rpc, Cache())
    # a cold start far from the head: the worst case
    first, last = await r.resolve(D0 - dt.timedelta(days=250))
    assert rpc.calls <= 20, rpc.calls
    assert first == rpc.truth(midnight_ts(D0) - 250 * 86_400)
    assert last == rpc.truth(midnight_ts(D0) - 249 * 86_400) - 1
    # subsequent days reuse probes: a handful of calls each
    before = rpc.calls
    for k in range(1, 11):
        await r.resolve(D0 - dt.timedelta(days=250 - k))
    assert (rpc.calls - before) / 10 <= 8, rpc.calls - before


async def test_not_final_and_future_days():
    full = make_chain(T0 - 100, 43_200 * 2, seed=5)
    ts = full[: bisect.bisect_left(full, T0 + 86_400) + 150]  # day 0 ends 150 blocks before the head
    rpc = FakeChain(ts)
    cache = Cache()
    r = DayResolver(rpc, cache, finality_blocks=200)
    with pytest.raises(DayNotFinal) as ei:
        await r.resolve(D0)
    e = ei.value
    assert e.day == D0 and e.head == len(ts) - 1 and e.end_block is not None
    assert "not final" in str(e) and "200" in str(e)
    assert T0 + 86_400 not in cache.d  # a non-final boundary is never cached
    with pytest.raises(DayNotFinal, match="not ended"):
        await r.resolve(D0 + dt.timedelta(days=1))
    # the same day with a smaller finality window resolves
    r2 = DayResolver(FakeChain(ts), Cache(), finality_blocks=100)
    first, last = await r2.resolve(D0)
    assert ts[first] >= T0 > ts[first - 1]


async def test_day_before_genesis():
    ts = make_chain(T0 + 86_400 * 3, 43_200 * 3, seed=2)
    r = DayResolver(FakeChain(ts), Cache())
    with pytest.raises(ValueError, match="no blocks"):
        await r.resolve(D0)
    # the day the chain starts: first block 0
    first, last = await r.resolve(D0 + dt.timedelta(days=3))
    assert first == 0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    offset=st.integers(-86_400, 86_400),
    gaps=st.sampled_from([(2,), (0, 2, 4), (0, 0, 0, 6), (1, 2, 3), (0, 1, 2, 2, 2, 9)]),
)
async def test_boundary_matches_brute_force(seed, offset, gaps):
    ts = make_chain(T0 - 86_400 + offset, 43_200 * 3, seed=seed, gaps=gaps)
    rpc = FakeChain(ts)
    r = DayResolver(rpc, Cache(), finality_blocks=10)
    for k in range(2):
        day = D0 + dt.timedelta(days=k)
        try:
            first, last = await r.resolve(day)
        except DayNotFinal:
            continue
        assert first == rpc.truth(midnight_ts(day))
        assert last == rpc.truth(midnight_ts(day) + 86_400) - 1
    assert rpc.calls <= 40


async def test_concurrent_resolves_share_one_head_safely():
    """Eight shards resolve their first days at once (the KeyError seen in a demo run)."""
    import asyncio as _asyncio
    import datetime as _dt

    from console.engine.days import DayResolver

    class SlowChain:
        """2 s blocks from 2024-01-01 00:00:00Z - 1000 s; every call yields to the loop."""

        base = int(_dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc).timestamp()) - 1000

        async def block_number(self):
            await _asyncio.sleep(0)
            return 100_000

        async def block_timestamp(self, n):
            await _asyncio.sleep(0)
            return self.base + 2 * n

        async def block_timestamps(self, blocks):
            await _asyncio.sleep(0)
            return {b: self.base + 2 * b for b in blocks}

    class Cache:
        async def get_boundary(self, ts):
            return None

        async def put_boundary(self, ts, block):
            pass

    resolver = DayResolver(SlowChain(), Cache(), finality_blocks=200)
    days = [_dt.date(2024, 1, 1) + _dt.timedelta(days=i) for i in range(2)]
    async def later(day, ticks):
        for _ in range(ticks):  # arrive while an earlier resolve is half-way through head()
            await _asyncio.sleep(0)
        return await resolver.resolve(day)

    got = await _asyncio.gather(*(later(d, i) for i, d in enumerate(days * 4)))
    assert got[0] == (500, 43_699) and got[1] == (43_700, 86_899)
    assert len(set(got)) == 2
