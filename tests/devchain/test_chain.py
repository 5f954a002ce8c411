"""Block timeline: jittered ~2 s blocks, real day boundaries, hashes that map back to numbers."""

from __future__ import annotations

import collections
import datetime as dt

from console.devchain.chain import Chain, day_start_ts


def test_timestamps_jitter_and_rate():
    c = Chain(3, dt.date(2024, 10, 28), 3)
    ts = [c.timestamp(n) for n in range(20_000)]
    deltas = collections.Counter(b - a for a, b in zip(ts, ts[1:]))
    assert min(deltas) >= 0, "timestamps must never go back"
    assert deltas[0] > 0, "some consecutive blocks must share a timestamp"
    assert deltas[3] + deltas[4] > 0, "some gaps must be 3-4 s"
    assert max(deltas) <= 4
    assert abs((ts[-1] - ts[0]) / (len(ts) - 1) - 2.0) < 0.02


def test_day_bounds_are_first_block_at_or_after_midnight():
    start = dt.date(2024, 10, 28)
    c = Chain(5, start, 4)
    assert c.timestamp(0) < day_start_ts(start), "block 0 must precede day 0 so the boundary search is real"
    prev_end = None
    for d in range(4):
        s, e = c.day_bounds(d)
        t0 = day_start_ts(start + dt.timedelta(days=d))
        t1 = day_start_ts(start + dt.timedelta(days=d + 1))
        assert c.timestamp(s) >= t0 and c.timestamp(s - 1) < t0
        assert c.timestamp(e) < t1 and c.timestamp(e + 1) >= t1
        assert 42_500 < e - s + 1 < 44_000
        if prev_end is not None:
            assert s == prev_end + 1
        prev_end = e
        assert c.day_of_block(s) == d and c.day_of_block(e) == d
    assert c.head >= c.last_day_block + 1000
    assert c.last_day_block == c.day_bounds(3)[1]


def test_first_block_at_or_after_matches_linear_scan():
    c = Chain(9, dt.date(2024, 1, 1), 1)
    ts = [c.timestamp(n) for n in range(3000)]
    for target in range(ts[0] - 5, ts[-1], 7):
        expect = next(n for n, t in enumerate(ts) if t >= target)
        assert c.first_block_at_or_after(target) == expect


def test_block_hash_roundtrip_and_uniqueness():
    c = Chain(1, dt.date(2024, 1, 1), 1)
    hashes = {c.block_hash(n) for n in range(5000)}
    assert len(hashes) == 5000
    for n in (0, 1, 777, 43_000):
        h = c.block_hash(n)
        assert len(h) == 66 and h == h.lower()
        assert c.block_from_hash(h) == n
    assert c.block_from_hash("0x" + "ab" * 32) is None


def test_full_length_chain_is_cheap():
    c = Chain(1, dt.date(2023, 1, 1), 1048)
    s, e = c.day_bounds(1047)
    assert 45_000_000 < e < 45_500_000
    assert c.timestamp(e) < day_start_ts(dt.date(2023, 1, 1) + dt.timedelta(days=1048))
