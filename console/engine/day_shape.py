"""Where a day's logs lie within its blocks: the cumulative shape the range planner cuts by.

Days are diurnal (a stream's evening can hold 2.5x its morning per block), so cutting a day into
equal *block* parts overflows a capped provider in the evening and under-fills the morning. The
planner instead cuts at equal *expected log counts*, from these shapes: the logs a (day, stream)
has fetched so far (a few sampled block numbers per response, see sample_knots), a same-day
stream fetched already (streams move together), or the intraday profile learned from earlier days.
"""

from __future__ import annotations

import bisect
from typing import Any

__all__ = ["SAMPLES", "GRID", "sample_knots", "Cdf", "Shape"]

SAMPLES = 48  # logs sampled per response (their blocks are the CDF's knots)
GRID = 96  # resolution of the learned intraday profile (15 min on a 2 s chain)


def sample_knots(logs: Any, a: int, b: int, k: int = SAMPLES) -> list[tuple[float, float]] | None:
    """Quantile knots of one response over [a, b]: (x, i) = about i of its logs lie in blocks < x.

    Reads ``blockNumber`` of at most ``k`` logs (wire.RawLog), evenly spaced by index (sorted by
    block, so the response needs no particular order). None when the logs do not say (then the
    response counts as spread evenly over its range)."""
    try:
        n = len(logs)
        if n == 0:
            return []
        m = min(n, k)
        idx = [((2 * j + 1) * n) // (2 * m) for j in range(m)]
        blocks = []
        for i in idx:
            v = int(logs[i].blockNumber, 16)
            if not a <= v <= b:
                return None
            blocks.append(v)
    except (TypeError, ValueError, AttributeError, IndexError):
        return None
    blocks.sort()
    # continuous model: block v spans [v, v+1); the i-th log (0-based) sits mid-block
    return [(v + 0.5, i + 0.5) for v, i in zip(blocks, idx)]


def _interp(xs: list[float], ys: list[float], x: float) -> float:
    """Piecewise-linear y(x) through ascending xs (clamped at both ends)."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    j = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[j - 1], xs[j], ys[j - 1], ys[j]
    return y0 if x1 <= x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class Cdf:
    """What one stream of one day has fetched so far, as cumulative counts at block boundaries:
    C(x) = logs in blocks < x, known for start <= x <= covered (piecewise linear between knots).
    Responses arrive in order (fetch_tiled tiles from the start); a maximal provider hint adds a
    provisional knot (about `cap` logs up to the suggested end) until that range is fetched."""

    __slots__ = ("end", "exact_to", "start", "xs", "ys")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.xs: list[float] = [float(start)]
        self.ys: list[float] = [0.0]
        self.exact_to = start

    @property
    def covered(self) -> float:
        return self.xs[-1]

    @property
    def full(self) -> bool:
        return self.xs[-1] >= self.end + 1

    def _truncate(self) -> None:
        while len(self.xs) > 1 and self.xs[-1] > self.exact_to:
            self.xs.pop()
            self.ys.pop()

    def add(self, a: int, b: int, n: int, knots: list[tuple[float, float]] | None) -> None:
        if a == self.start and self.exact_to != self.start:
            self.__init__(self.start, self.end)  # the day is being fetched again
        if a != self.exact_to or b < a:
            return
        self._truncate()
        base = self.ys[-1]
        for x, i in knots or ():
            if x > self.xs[-1]:
                self.xs.append(x)
                self.ys.append(base + i)
        self.xs.append(float(b + 1))
        self.ys.append(float(base + n))
        self.exact_to = b + 1

    def hint(self, a: int, b: int, n: int) -> None:
        if a != self.exact_to or b < a:
            return
        self._truncate()
        self.xs.append(float(b + 1))
        self.ys.append(self.ys[-1] + n)

    def at(self, x: float) -> float:
        return _interp(self.xs, self.ys, x)


class Shape:
    """The day's activity as a CDF G over block boundaries: G(start) = 0, G(end + 1) = 1.

    From a guide (a stream of the same day already fetched: streams move together) where it
    has been fetched, the learned profile (previous days) beyond, else even. ``total`` is the
    guide's day total (measured, or extrapolated through the profile when partly fetched)."""

    def __init__(self, start: int, end: int, profile: list[float] | None, guide: Cdf | None = None):
        self.start, self.end = start, end
        self.blocks = end - start + 1
        self.profile = profile
        self.guide = guide
        self.kind = "guide" if guide is not None else ("profile" if profile else "even")
        self.total: float | None = None
        self.g_cov = 0.0  # G at the end of the guide's coverage
        if guide is not None:
            cov = min(guide.covered, end + 1.0)
            self.g_cov = self._p(cov)
            self.total = guide.at(cov) / self.g_cov if self.g_cov > 0 else None
            if guide.full:
                self.g_cov, self.total = 1.0, guide.at(end + 1.0)
            elif self.g_cov < 0.1 or guide.at(cov) < 100:
                self.total = None  # too little of the day to extrapolate from
            if not self.total:
                self.guide, self.kind, self.total = None, ("profile" if profile else "even"), None

    def _p(self, x: float) -> float:
        f = min(1.0, max(0.0, (x - self.start) / self.blocks))
        if not self.profile:
            return f
        g = f * GRID
        j = min(int(g), GRID - 1)
        return self.profile[j] + (self.profile[j + 1] - self.profile[j]) * (g - j)

    def at(self, x: float) -> float:
        g = self.guide
        if g is None or x > g.covered:
            return self._p(x)
        if x <= g.exact_to:
            return g.at(x) / self.total  # type: ignore[operator]
        # inside a provider's hint (a count, no blocks): spread it as the profile does
        e, c = float(g.exact_to), g.covered
        pe, pc = self._p(e), self._p(c)
        f = (self._p(x) - pe) / (pc - pe) if pc > pe else (x - e) / (c - e)
        return (g.at(e) + (g.at(c) - g.at(e)) * f) / self.total  # type: ignore[operator]

    def block_at(self, y: float, lo: int, hi: int) -> int:
        """The largest boundary x in [lo, hi] with G(x) <= y (bisection; G is non-decreasing)."""
        if self.at(hi) <= y:
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.at(mid) <= y:
                lo = mid
            else:
                hi = mid
        return lo
