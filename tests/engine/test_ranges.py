"""Range planner: exact tiling under any sequence of too-large answers, provider hints, learned
limits, and the call-efficiency goal on an Alchemy-like fake (10,000-log cap, suggested ranges)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.engine.errors import InvalidResponse, RpcUnavailable, TooLarge, Unsplittable
from console.engine.ranges import ProviderLimits, RangePlanner, fetch_tiled


class Stats:
    oversize_failures = 0
    invalid_responses = 0


class ScriptedRpc:
    """Answers eth_getLogs from a hypothesis-drawn script: each call either succeeds or raises a
    TooLarge with an arbitrary (possibly useless or bogus) hint."""

    def __init__(self, data, max_fail_streak: int = 40):
        self.data = data
        self.calls: list[tuple[int, int]] = []
        self.stats = Stats()
        self.streak = 0
        self.max_fail_streak = max_fail_streak

    async def get_logs(self, f, t, address, topics):
        self.calls.append((f, t))
        fail = self.streak < self.max_fail_streak and t > f and self.data.draw(st.booleans(), label="fail")
        if not fail:
            self.streak = 0
            return [{"n": i} for i in range(self.data.draw(st.integers(0, 3), label="n"))]
        self.streak += 1
        kind = self.data.draw(st.sampled_from(["none", "suggest", "suggest-bogus", "range", "results"]), label="kind")
        if kind == "suggest":
            end = self.data.draw(st.integers(f, t), label="sug_end")
            raise TooLarge("this block range should work", (f, end), None, 10_000, kind="results")
        if kind == "suggest-bogus":
            a = self.data.draw(st.integers(0, 2 * t + 5), label="a")
            b = self.data.draw(st.integers(0, 2 * t + 5), label="b")
            raise TooLarge("bogus", (a, b), None, None)
        if kind == "range":
            raise TooLarge("range", None, self.data.draw(st.integers(1, 5000), label="mr"), None, kind="range")
        if kind == "results":
            raise TooLarge("results", None, None, self.data.draw(st.integers(1, 20_000), label="mx"), kind="results")
        raise TooLarge("block range is too wide", None, None, None, kind=self.data.draw(st.sampled_from([None, "range"])))


def assert_tiles(pieces, start, end):
    assert pieces, "nothing yielded"
    assert pieces[0][0] == start
    assert pieces[-1][1] == end
    for (a0, a1), (b0, b1) in zip(pieces, pieces[1:]):
        assert a0 <= a1 and b0 == a1 + 1
    assert pieces[-1][0] <= pieces[-1][1]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    start=st.integers(0, 10**8),
    length=st.integers(1, 120_000),
    seed_density=st.one_of(st.none(), st.floats(0, 50)),
    limits=st.builds(ProviderLimits, st.one_of(st.none(), st.integers(1, 5000)), st.one_of(st.none(), st.integers(1, 20_000))),
    initial_span=st.integers(1, 60_000),
)
async def test_any_too_large_sequence_still_tiles_exactly(data, start, length, seed_density, limits, initial_span):
    end = start + length - 1
    rpc = ScriptedRpc(data)
    planner = RangePlanner(limits, initial_span=initial_span)
    planner.seed_density(seed_density)
    pieces = []
    async for f, t, logs in fetch_tiled(rpc, start, end, "0xaa", None, planner):
        pieces.append((f, t))
        assert isinstance(logs, list)
    assert_tiles(pieces, start, end)
    # every call stays inside the day and starts where the tiling is
    for f, t in rpc.calls:
        assert start <= f <= t <= end
    # a learned max_range is honoured by every call after it was learned
    if planner.limits.max_range:
        assert all(t - f + 1 <= max(planner.limits.max_range, 1) for f, t in rpc.calls[-1:])


async def test_single_block_still_too_large_raises_unsplittable():
    class Always:
        stats = Stats()

        async def get_logs(self, f, t, a, tp):
            raise TooLarge("query returned more than 10000 results", None, None, 10_000, kind="results")

    with pytest.raises(Unsplittable, match="alone exceeds"):
        async for _ in fetch_tiled(Always(), 100, 5000, "0xaa", None, RangePlanner(ProviderLimits())):
            pass


async def test_split_only_the_failing_subrange_at_the_suggested_end():
    calls = []

    class Rpc:
        stats = Stats()

        async def get_logs(self, f, t, a, tp):
            calls.append((f, t))
            if len(calls) == 1:
                raise TooLarge("…should work: [0x64, 0x95]", (100, 149), None, 10_000, kind="results")
            return []

    planner = RangePlanner(ProviderLimits(), initial_span=1000)
    out = [(f, t) async for f, t, _ in fetch_tiled(Rpc(), 100, 1099, "0xaa", None, planner)]
    assert calls[0] == (100, 1099)
    assert calls[1] == (100, 149)  # the suggestion's end becomes this attempt's end
    assert out[0] == (100, 149) and out[1][0] == 150 and out[-1][1] == 1099
    assert planner.limits.max_results == 10_000
    assert Rpc.stats.oversize_failures == 1 and planner.oversize == 1


async def test_learned_max_range_is_honoured_and_persisted():
    calls = []

    class Rpc:
        stats = Stats()

        async def get_logs(self, f, t, a, tp):
            calls.append((f, t))
            if t - f + 1 > 3500:
                raise TooLarge("eth_getLogs block range too large, range: %d, max: 3500" % (t - f + 1), None, 3500, None, kind="range")
            return []

    limits = ProviderLimits()
    planner = RangePlanner(limits, initial_span=20_000)
    out = [(f, t) async for f, t, _ in fetch_tiled(Rpc(), 0, 43_199, "0xaa", None, planner)]
    assert_tiles(out, 0, 43_199)
    assert limits.max_range == 3500
    assert sum(1 for f, t in calls if t - f + 1 > 3500) == 1  # one failure, then never again
    restored = ProviderLimits.from_dict(limits.to_dict())
    assert restored == limits
    calls.clear()
    planner2 = RangePlanner(restored, initial_span=20_000)
    out2 = [(f, t) async for f, t, _ in fetch_tiled(Rpc(), 0, 43_199, "0xaa", None, planner2)]
    assert_tiles(out2, 0, 43_199)
    assert all(t - f + 1 <= 3500 for f, t in calls)


def test_limits_dict_roundtrip_and_junk():
    assert ProviderLimits.from_dict(None) == ProviderLimits()
    assert ProviderLimits.from_dict({"max_range": "500", "max_results": None}) == ProviderLimits(500, None)
    assert ProviderLimits.from_dict({"max_range": -1, "max_results": "x"}) == ProviderLimits()
    assert ProviderLimits(10, 20).to_dict() == {"max_range": 10, "max_results": 20, "max_ok": None}


async def test_transform_invalid_response_refetches_same_range():
    seen = []

    class Rpc:
        stats = Stats()

        async def get_logs(self, f, t, a, tp):
            seen.append((f, t))
            return [1, 2]

    bad = {"n": 2}

    def transform(logs, f, t):
        if bad["n"]:
            bad["n"] -= 1
            raise InvalidResponse("malformed")
        return ("decoded", len(logs))

    out = [x async for x in fetch_tiled(Rpc(), 0, 9, "0xaa", None, RangePlanner(ProviderLimits(), initial_span=100), transform=transform)]
    assert out == [(0, 9, ("decoded", 2))]
    assert seen == [(0, 9)] * 3 and Rpc.stats.invalid_responses == 2

    bad["n"] = 99
    with pytest.raises(RpcUnavailable):
        async for _ in fetch_tiled(Rpc(), 0, 9, "0xaa", None, RangePlanner(ProviderLimits()), transform=transform, invalid_retries=2):
            pass


# ----------------------------------------------------------------------------- efficiency
BPD = 43_200
_DIURNAL = [1.15, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.55, 0.6, 0.7, 0.8,
            0.9, 1.0, 1.1, 1.2, 1.3, 1.35, 1.4, 1.4, 1.35, 1.3, 1.25, 1.2]  # fmt: skip


class AlchemyLike:
    """Alchemy semantics: more than ``cap`` logs -> error with the largest range that works."""

    def __init__(self, counts: list[int], cap: int = 10_000):
        self.cum = [0]
        for c in counts:
            self.cum.append(self.cum[-1] + c)
        self.cap = cap
        self.calls = 0
        self.fails = 0
        self.stats = Stats()

    async def get_logs(self, f, t, a, tp):
        self.calls += 1
        n = self.cum[t + 1] - self.cum[f]
        if n > self.cap:
            self.fails += 1
            lo, hi = f, t  # largest e with cum[e+1]-cum[f] <= cap
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.cum[mid + 1] - self.cum[f] <= self.cap:
                    lo = mid
                else:
                    hi = mid - 1
            raise TooLarge("Log response size exceeded … cap of 10K logs …", (f, lo), None, self.cap, kind="results")
        return range(n)  # only len() is used


def day_counts(rnd: random.Random, total: float) -> list[int]:
    w = [x * (0.85 + 0.3 * rnd.random()) for x in _DIURNAL]
    s = sum(w)
    out = []
    for h in range(24):
        lam = total * w[h] / s / 1800
        # cheap Poisson-ish: binomial-like rounding keeps the sum right on average
        acc = 0.0
        for _ in range(1800):
            acc += lam
            k = int(acc)
            acc -= k
            out.append(k)
    return out


async def run_streams(days: int, seed: int, shares=(0.3, 0.3, 0.4)):
    """Days of 5k-50k relevant logs (log-uniform, independent from day to day, as the devchain's
    `full` density), split over three streams fetched one after the other per day with a shared
    DensityBook; returns per stream [calls, minimum, failures]."""
    from console.engine.ranges import DensityBook

    rnd = random.Random(seed)
    limits = ProviderLimits()
    book = DensityBook()
    per = [[0, 0, 0] for _ in shares]
    for d in range(days):
        total = math.exp(math.log(5000) + rnd.random() * (math.log(50_000) - math.log(5000)))
        for s, share in enumerate(shares):
            counts = day_counts(rnd, total * share)
            rpc = AlchemyLike(counts)
            planner = RangePlanner(limits, book=book, day_idx=d, stream=f"s{s}")
            pieces = [(f, t) async for f, t, _ in fetch_tiled(rpc, 0, BPD - 1, None, None, planner)]
            assert_tiles(pieces, 0, BPD - 1)
            per[s][0] += rpc.calls
            per[s][1] += max(1, math.ceil(sum(counts) / 10_000))
            per[s][2] += rpc.fails
    return per


async def test_alchemy_like_call_efficiency():
    per = await run_streams(days=40, seed=5)
    calls = sum(p[0] for p in per)
    minimum = sum(p[1] for p in per)
    fails = sum(p[2] for p in per)
    print(f"calls={calls} minimum={minimum} ratio={calls / minimum:.3f} failed={fails} ({fails / calls:.1%})")
    print("per stream (calls/min, failed):", [(round(p[0] / p[1], 3), p[2]) for p in per])
    # Streams after the first of a day know the day's activity (from the same-day ratio): close
    # to the minimum. The first stream of a day has only other days to go by (independent here).
    for c, m, f in per[1:]:
        assert c / m <= 1.15 and f / c <= 0.06
    assert calls / minimum <= 1.15 and fails / calls <= 0.06


async def test_a_yielded_response_is_not_kept_by_the_generator():
    """Once the consumer drops a response it is freed — not held by fetch_tiled's suspended frame
    through the consumer's insert wait and the next call (two parsed responses per stream)."""
    import gc
    import weakref

    class Logs(list):  # a list that can be weakly referenced
        pass

    alive_at_next_call = []
    refs: list[weakref.ref] = []

    class Rpc:
        stats = Stats()

        async def get_logs(self, f, t, a, tp):
            gc.collect()
            if refs:
                alive_at_next_call.append(refs[-1]() is not None)
            return Logs([{"n": 1}])

    planner = RangePlanner(ProviderLimits(max_range=10), initial_span=10)
    async for _, _, logs in fetch_tiled(Rpc(), 0, 49, "0xaa", None, planner):
        refs.append(weakref.ref(logs))
        del logs
    assert len(refs) == 5 and alive_at_next_call == [False] * 4
