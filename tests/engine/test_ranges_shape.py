"""Range planner on diurnal days: calls cut at equal expected log counts (the day's shape, from a
same-day stream fetched first or the learned profile), the wait for that stream, hint-driven
boundaries, and the call count against the cap-bound minimum with streams fetched concurrently
as the shards do (an Alchemy-like fake: 10,000-log cap, maximal suggested range)."""

from __future__ import annotations

import asyncio
import itertools
import math

import numpy as np

from console.engine.errors import TooLarge
from console.engine.day_shape import sample_knots
from console.engine.ranges import DensityBook, ProviderLimits, RangePlanner, fetch_tiled
from console.engine.wire import RawLog

BPD = 43_200
CAP = 10_000
# US-evening-heavy (UTC hours): the evening is ~2.5x the morning trough
DIURNAL = [1.15, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.55, 0.6, 0.7, 0.8,
           0.9, 1.0, 1.1, 1.2, 1.3, 1.35, 1.4, 1.4, 1.35, 1.3, 1.25, 1.2]  # fmt: skip


class Stats:
    oversize_failures = 0
    invalid_responses = 0


class Logs:
    """A response: len() and logs[i].blockNumber, built lazily (10K logs per call are slow)."""

    def __init__(self, blocks: np.ndarray):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> RawLog:
        return at_block(int(self.blocks[i]))


def at_block(block: int | str) -> RawLog:
    """A log of which only the block matters here."""
    number = block if isinstance(block, str) else hex(block)
    return RawLog(address="0xaa", topics=[], data="0x", blockNumber=number,
                  transactionHash="0x" + "cc" * 32, logIndex="0x0")


class CappedChain:
    """One stream's logs on one day; more than ``cap`` logs -> TooLarge with the largest range
    from ``from`` that fits (Alchemy's suggestion)."""

    def __init__(self, name: str, start: int, counts: np.ndarray, events: list, cap: int = CAP):
        self.name, self.start, self.cap, self.events = name, start, cap, events
        self.cum = np.concatenate([[0], np.cumsum(counts)])
        self.log_blocks = np.repeat(np.arange(start, start + len(counts)), counts)
        self.calls: list[tuple[int, int]] = []
        self.fails = 0
        self.stats = Stats()

    def count(self, f: int, t: int) -> int:
        return int(self.cum[t + 1 - self.start] - self.cum[f - self.start])

    async def get_logs(self, f, t, address, topics):
        self.calls.append((f, t))
        self.events.append(("call", self.name, f, t))
        await asyncio.sleep(0)  # a round trip: the day's other streams run meanwhile
        i0, i1 = int(self.cum[f - self.start]), int(self.cum[t + 1 - self.start])
        if i1 - i0 > self.cap:
            self.fails += 1
            hi = max(f, int(self.log_blocks[i0 + self.cap]) - 1)
            raise TooLarge("Log response size exceeded … this block range should work", (f, hi), None,
                           self.cap, kind="results")
        self.events.append(("response", self.name, f, t))
        return Logs(self.log_blocks[i0:i1])


def day_counts(rng: np.random.Generator, trades: float) -> dict[str, np.ndarray]:
    """Per-block counts of two streams that move together (each trade: one `sparse` log and
    one or two `dense` logs), over a diurnal day with +-15% hourly noise."""
    w = np.array(DIURNAL) * rng.uniform(0.85, 1.15, 24)
    w /= w.sum()
    per_block = np.repeat(w * trades / (BPD // 24), BPD // 24)
    t = rng.poisson(per_block)
    return {"sparse": t, "dense": t + rng.binomial(t, 0.95)}


def minimum(counts: np.ndarray) -> int:
    return max(1, math.ceil(int(counts.sum()) / CAP))


def assert_tiles(pieces, start, end):
    assert pieces and pieces[0][0] == start and pieces[-1][1] == end
    for (a0, a1), (b0, _b1) in itertools.pairwise(pieces):
        assert a0 <= a1 and b0 == a1 + 1


async def fetch_stream(chain: CappedChain, planner: RangePlanner, start: int, end: int):
    return [(f, t) async for f, t, _ in fetch_tiled(chain, start, end, None, None, planner)]


async def run_days(days: int, seed: int, lo: float = 2_500, hi: float = 10_000):
    """Days of lo..hi trades (log-uniform, independent day to day: the dense stream holds
    ~0.5-2 caps), both streams of a day fetched concurrently like the shards' TaskGroup.
    Returns ({stream: [calls, minimum, failed]}, events of the last day, book)."""
    rng = np.random.default_rng(seed)
    limits, book = ProviderLimits(), DensityBook()
    per = {"sparse": [0, 0, 0], "dense": [0, 0, 0]}
    events: list = []
    for d in range(days):
        trades = math.exp(math.log(lo) + rng.random() * (math.log(hi) - math.log(lo)))
        counts = day_counts(rng, trades)
        start, end = d * BPD, d * BPD + BPD - 1
        events = []
        chains = {s: CappedChain(s, start, c, events) for s, c in counts.items()}
        planners = {s: RangePlanner(limits, book=book, day_idx=d, stream=s) for s in counts}
        async with asyncio.TaskGroup() as tg:
            tasks = {s: tg.create_task(fetch_stream(chains[s], planners[s], start, end)) for s in counts}
        for s in counts:
            assert_tiles(tasks[s].result(), start, end)
            per[s][0] += len(chains[s].calls)
            per[s][1] += minimum(counts[s])
            per[s][2] += chains[s].fails
    return per, events, book


async def test_concurrent_streams_close_to_the_minimum():
    per, _, _ = await run_days(days=80, seed=3)
    calls = sum(p[0] for p in per.values())
    mins = sum(p[1] for p in per.values())
    fails = sum(p[2] for p in per.values())
    print({s: (p[0], p[1], p[2]) for s, p in per.items()}, f"ratio {calls / mins:.3f}")
    dense = per["dense"]
    # the dense stream holds 0.5-2 caps a day and learns its day from the sparse one
    assert dense[0] / dense[1] <= 1.10
    assert calls / mins <= 1.08
    assert fails / calls <= 0.05


async def test_dense_stream_waits_for_the_sparse_one_once_it_has_history():
    _, events, book = await run_days(days=20, seed=11, lo=6_000, hi=9_000)
    first_dense = next(i for i, e in enumerate(events) if e[0] == "call" and e[1] == "dense")
    first_sparse_answer = next(i for i, e in enumerate(events) if e[0] == "response" and e[1] == "sparse")
    assert first_sparse_answer < first_dense
    # 1.2-1.75 caps of dense logs a day: two calls, once the book knows the streams
    assert book.ratio("dense", "sparse") is not None


def seeded_book(days: int = 8, ratio: float = 1.95) -> DensityBook:
    """A book that has seen ``days`` complete days of both streams (sparse: 0.1-0.2 logs/block)."""
    book = DensityBook()
    for d in range(days):
        sparse = int(BPD * (0.1 + 0.1 * d / days))
        book.record(d, "sparse", sparse, BPD, done=True)
        book.record(d, "dense", int(sparse * ratio * (1 + 0.01 * (-1) ** d)), BPD, done=True)
    return book


def diurnal_day(trades: float, seed: int = 0) -> dict[str, np.ndarray]:
    return day_counts(np.random.default_rng(seed), trades)


async def test_parts_cut_at_equal_expected_counts_not_equal_blocks():
    """1.8 caps of dense logs on a diurnal day: halves by block overflow in the evening (the old
    planner's cut); halves by the sparse stream's same-day shape do not."""
    counts = diurnal_day(9_300)
    d, start = 20, 20 * BPD
    end = start + BPD - 1
    dense = counts["dense"]
    assert 1.7 * CAP < dense.sum() < 1.95 * CAP
    assert dense[BPD // 2:].sum() > CAP  # the equal-block second half would not fit
    book = seeded_book()
    sparse_logs = Logs(np.repeat(np.arange(start, end + 1), counts["sparse"]))
    book.register(d, "sparse")
    book.observe(d, "sparse", start, end, start, end, len(sparse_logs), sample_knots(sparse_logs, start, end))
    chain = CappedChain("dense", start, dense, [])
    planner = RangePlanner(ProviderLimits(max_results=CAP), book=book, day_idx=d, stream="dense")
    pieces = await fetch_stream(chain, planner, start, end)
    assert_tiles(pieces, start, end)
    assert chain.fails == 0 and len(chain.calls) == 2
    # both calls well filled (equal expected counts), not a full one and a sliver
    assert min(chain.count(f, t) for f, t in pieces) > 0.8 * CAP


async def test_profile_learned_from_previous_days_shapes_the_cut():
    """No same-day stream: once the book has learned the intraday profile from complete days, a
    day known (from its first call) to need two more calls is cut by expected counts."""
    book = seeded_book()
    limits = ProviderLimits(max_results=CAP)
    for d in range(3):  # three complete days teach the profile
        counts = diurnal_day(6_000, seed=d)
        start = (100 + d) * BPD
        chain = CappedChain("dense", start, counts["dense"], [])
        planner = RangePlanner(limits, book=book, day_idx=100 + d, stream="dense")
        await fetch_stream(chain, planner, start, start + BPD - 1)
    prof = book.profile
    assert prof is not None and prof[0] == 0 and abs(prof[-1] - 1) < 1e-9
    # the evening half holds more than the morning one (DIURNAL: 14.55 vs 9.45 of 24)
    assert prof[48] < 0.45
    shape = book.shape(200, "dense", 0, BPD - 1)[0]
    assert shape.kind == "profile"
    # the boundary that halves the expected count lies past mid-day
    assert shape.block_at(0.5, 1, BPD) > BPD // 2 + 1000


async def test_provider_hint_sets_the_boundary_and_guides_the_other_stream():
    """The sparse stream's first (whole-day) call fails: the retry ends at the suggested block,
    and the hint (about `cap` logs up to there) already tells the dense stream its day."""
    counts = diurnal_day(14_000, seed=4)  # sparse ~1.4 caps, dense ~2.7 caps
    d, start = 30, 30 * BPD
    end = start + BPD - 1
    book = seeded_book()
    limits = ProviderLimits(max_results=CAP)
    chain = CappedChain("sparse", start, counts["sparse"], [])
    planner = RangePlanner(limits, book=book, day_idx=d, stream="sparse")
    planner.begin(start, end)
    to = planner.plan(start, end)
    assert to == end  # past days say one call (at most 0.2 logs/block)
    try:
        await chain.get_logs(start, to, None, None)
    except TooLarge as e:
        retry_to = planner.on_too_large(start, to, e)
        assert retry_to == e.suggested[1]
        assert chain.count(start, retry_to) <= CAP < chain.count(start, retry_to + 1)
    else:
        raise AssertionError("the fake should have refused a 1.4-cap range")
    shape, guide, _ = book.shape(d, "dense", start, end)
    assert guide == "sparse"
    expected_dense_total = book.ratio("dense", "sparse")[0] * shape.total
    assert abs(expected_dense_total / counts["dense"].sum() - 1) < 0.1


async def test_wait_for_a_stream_that_never_answers_gives_up():
    book = seeded_book()
    book.wait_timeout = lambda: 0.01  # type: ignore[method-assign]
    d, start = 40, 40 * BPD
    end = start + BPD - 1
    counts = diurnal_day(9_000, seed=5)
    book.register(d, "sparse")  # registered, but never fetches
    chain = CappedChain("dense", start, counts["dense"], [])
    planner = RangePlanner(ProviderLimits(max_results=CAP), book=book, day_idx=d, stream="dense")
    planner.begin(start, end)
    assert planner.wait_candidate() == "sparse"
    pieces = await fetch_stream(chain, planner, start, end)
    assert_tiles(pieces, start, end)


def test_sample_knots_sorted_unsorted_and_junk():
    logs = [at_block(b) for b in (10, 10, 11, 15, 19)]
    knots = sample_knots(logs, 10, 20)
    assert knots is not None and len(knots) == 5
    xs = [x for x, _ in knots]
    assert xs == sorted(xs) and xs[0] == 10.5 and xs[-1] == 19.5
    assert [i for _, i in knots] == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert sample_knots(list(reversed(logs)), 10, 20) == knots  # order of the response does not matter
    assert sample_knots([at_block("0xzz")], 10, 20) is None
    assert sample_knots([at_block(99)], 10, 20) is None  # outside the range asked
    assert sample_knots(range(3), 10, 20) is None
    assert sample_knots([], 10, 20) == []
    many = Logs(np.arange(1000, 2000))
    k = sample_knots(many, 1000, 1999)
    assert k is not None and len(k) == 48
