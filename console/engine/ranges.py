"""Adaptive eth_getLogs range planning (DESIGN §6.3).

For one (day, stream) the planner hands out consecutive sub-ranges [from, to] that tile the day's
block range exactly (fetch_tiled drives it). Sizing:

- a *target* log count per call: once the provider's cap is known (``limits.max_results``, learned
  from its too-large texts), ``fill`` (0.95) of the cap; before that ``target_logs``, probing
  upwards to 2x the largest response served so far (so a capped provider reveals its cap in one
  failed call, and an uncapped one gets fewer, larger calls);
- the day's *shape* (console/engine/day_shape.py): streams of a day move together, so the
  cumulative log count of a stream of the same day that has been fetched (its responses' blocks,
  sampled) tells where this stream's logs lie; where none has, the intraday profile learned from complete days (diurnal: evenings
  ~2.5x the morning); else even;
- an *estimate* of the stream's day total, best first: the same-day stream with the steadiest
  ratio (the "guide") times that ratio, blended with what this (day, stream) has fetched so far
  (its count over the shape's fraction fetched), each with a variance; then the older estimates
  (DensityBook.estimate: other streams' partial densities, previous days, ``seed_density``);
- the rest of the day is cut into n parts at *equal expected counts* (not equal blocks); with a
  confident estimate n minimises n + P(a part exceeds the cap) x (1 + fail_cost) under a
  log-normal error whose scale the book calibrates from the planner's own misses, so a day of
  1.96 caps known to +-2% takes 2 nearly full calls, and one of 0.9 cap known to +-9% takes 1;
- a stream likely to need several calls waits (before its first call, bounded by a few call
  latencies) for a sparser guide of the same day that is being fetched concurrently
  (RangePlanner.wait_candidate): ctf_transfers for usdc_from (their ratio varies ~2% by day);
- the first call of a day with only other days to go by is sized by expected cost over the stream's
  past densities (calls + fail_cost x failed calls; see _bayes_span), with fail_cost steered so
  that the run's failed oversize calls stay under 5%;
- spans never exceed ``limits.max_range`` (learned) nor ``max_span``.

On too-large only the failing sub-range is split: at the provider's suggested end when the message
has one (Alchemy/Infura/Erigon: the suggestion's end becomes this attempt's end, and "about cap logs
up to there" is recorded for the day's other streams), else at a stated max range, else in half;
the rest of the day is re-planned after the retried piece succeeds.

Why not aim at half the cap: that costs ~2x the minimum number of calls (ceil(logs/cap)); the
product goal is <= 1.10x with <= 5% failed oversize calls, and a maximal suggested range makes an
occasional overshoot cheap (one failed call, then a call that is exactly full). Figures from the
simulations in tests/engine/test_ranges.py and test_ranges_shape.py (Alchemy-like fakes, 10,000-log
cap; the latter diurnal, with streams fetched concurrently as the shards do).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Callable

from .day_shape import GRID, Cdf, Shape, sample_knots
from .errors import InvalidResponse, RpcUnavailable, TooLarge, Unsplittable
from .wire import RawLog

__all__ = ["ProviderLimits", "RangePlanner", "DensityBook", "fetch_tiled"]


@dataclass
class ProviderLimits:
    """What we learned about one provider's eth_getLogs limits (persisted by the lead)."""

    max_range: int | None = None  # largest block span the provider accepts
    max_results: int | None = None  # largest log count the provider returns in one response
    max_ok: int | None = None  # largest response it has served us (a lower bound of the cap)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "ProviderLimits":
        d = d or {}

        def pos(v: Any) -> int | None:
            try:
                v = int(v)
            except (TypeError, ValueError):
                return None
            return v if v > 0 else None

        return cls(
            max_range=pos(d.get("max_range")),
            max_results=pos(d.get("max_results")),
            max_ok=pos(d.get("max_ok")),
        )

    def served(self, n_logs: int) -> None:
        if n_logs > 0 and (self.max_ok is None or n_logs > self.max_ok):
            self.max_ok = int(n_logs)

    def learn(self, err: TooLarge, attempted_span: int | None = None) -> bool:
        """Fold what a too-large error says into the limits. Returns True when something changed."""
        changed = False
        if err.max_range and (self.max_range is None or err.max_range < self.max_range):
            self.max_range = int(err.max_range)
            changed = True
        if err.max_results and (self.max_results is None or err.max_results < self.max_results):
            self.max_results = int(err.max_results)
            changed = True
        if err.kind == "results" and not err.max_results and self.max_results is None and self.max_ok:
            # "query exceeds max results" with no number: the cap is at least what it served.
            self.max_results = self.max_ok
            changed = True
        if (
            err.kind == "range"
            and not err.max_range
            and not err.suggested
            and attempted_span is not None
            and attempted_span > 1
        ):
            # "block range is too wide" with no number: the limit is below what we asked for.
            guess = max(1, attempted_span // 2)
            if self.max_range is None or guess < self.max_range:
                self.max_range = guess
                changed = True
        return changed


_KEEP = 400  # (day, stream) CDFs kept (days in flight and a few recent ones)


class DensityBook:
    """Shared (per run) memory of observed densities and intraday shapes, used by planners.

    Estimates for a (day, stream), best first:
    1. *same day, other streams*: streams of one day move together (a trade emits a USDC.e leg and
       a CTF leg), so once one stream of the day has been fetched (even partly), another stream's
       density is that density times the ratio of the two streams seen on earlier days. The
       fetched stream's log blocks (sampled, ``cdf``) also give the day's intraday shape, so the
       other stream's sub-ranges can be cut at equal expected log counts rather than equal blocks;
    2. *previous days of the same stream*: the nearest earlier day (else the nearest later one),
       or the spread of those days' densities (``samples``, for the first call's expected cost).
    ``estimate`` returns (density, confidence) with confidence "same_day" | "other_day" | None.
    Planners given a book record into it as they go (``record``, ``observe``); the lead may also
    seed it from SQLite after a restart with ``record(day_idx, stream, logs, blocks, done=True)``.
    """

    def __init__(self) -> None:
        # (day, stream) -> [logs, blocks, done]
        self._obs: dict[tuple[int, str], list] = {}
        self._by_day: dict[int, dict[str, list]] = {}
        self._done: dict[str, dict[int, float]] = {}  # stream -> {day: density} of complete days
        # (stream_a, stream_b) -> [EWMA of log(density_a / density_b), EWMA of its squared
        # deviation, complete days seen] over complete days
        self._lratio: dict[tuple[str, str], list] = {}
        self._cdf: dict[tuple[int, str], Cdf] = {}
        self._profile: list[float] | None = None  # intraday CDF of activity on GRID + 1 points
        self._events: dict[tuple[int, str], asyncio.Event] = {}
        self._registered: dict[int, set[str]] = {}
        self.latency: float | None = None  # EWMA seconds of a successful eth_getLogs
        self.kappa = 1.0  # calibration: (EWMA of |standardised prediction error| / 0.798)^2
        self._abs_z = 0.798
        # eth_getLogs calls / failed oversize calls of every planner using this book
        self.calls = 0
        self.oversize = 0

    # -------------------------------------------------------------- failed-call budget
    def _rate(self) -> float | None:
        return self.oversize / self.calls if self.calls >= 20 else None

    def fail_cost(self, target_rate: float = 0.05) -> float:
        """How much a failed oversize call should weigh when sizing a first call: a controller that
        keeps the run's failed-call rate under ``target_rate`` (the product goal is <= 5%)."""
        rate = self._rate()
        if rate is None:
            return 1.0
        if rate < 0.6 * target_rate:
            return 0.5
        if rate < 0.85 * target_rate:
            return 1.0
        return 3.0

    def calibrate(self, z: float) -> None:
        """Fold one standardised prediction error (observed vs predicted log count over the
        prediction's standard error): the mean of |z| (0.798 when the variances are right) is
        less swayed by the odd outlier than the mean of z^2."""
        self._abs_z = 0.95 * self._abs_z + 0.05 * min(4.0, abs(z))
        self.kappa = min(6.0, max(0.5, (self._abs_z / 0.798) ** 2))

    # -------------------------------------------------------------- densities
    def record(self, day_idx: int, stream: str, logs: int, blocks: int, done: bool = False) -> None:
        o = [int(logs), int(blocks), bool(done)]
        self._obs[(day_idx, stream)] = o
        self._by_day.setdefault(day_idx, {})[stream] = o
        if not done or blocks <= 0:
            return
        self._done.setdefault(stream, {})[day_idx] = logs / blocks
        c = self._cdf.get((day_idx, stream))
        if c is not None and c.full and c.at(c.end + 1) >= 300:
            self._fold_profile(c)
        d_self = (logs + 0.5) / blocks
        for other, (l2, b2, done2) in self._by_day[day_idx].items():
            if other == stream or not done2 or b2 <= 0:
                continue
            lr = math.log(d_self / ((l2 + 0.5) / b2))
            for key, x in (((stream, other), lr), ((other, stream), -lr)):
                old = self._lratio.get(key)
                if old is None:
                    self._lratio[key] = [x, 0.0, 1]
                else:
                    dev = x - old[0]
                    old[1] = dev * dev if old[2] == 1 else 0.9 * old[1] + 0.1 * dev * dev
                    old[0] = 0.8 * old[0] + 0.2 * x
                    old[2] += 1

    @property
    def _ratio(self) -> dict[tuple[str, str], float]:
        return {k: math.exp(v[0]) for k, v in self._lratio.items()}

    def ratio(self, a: str, b: str) -> tuple[float, float] | None:
        """(density_a / density_b, variance of its log across days) once 3 complete days had both."""
        v = self._lratio.get((a, b))
        if v is None or v[2] < 3:
            return None
        return math.exp(v[0]), v[1]

    def samples(self, stream: str, exclude_day: int | None = None, limit: int = 256) -> list[float]:
        """Densities of the stream's complete days (the empirical prior), most recent days last."""
        days = self._done.get(stream, {})
        return [x for d, x in sorted(days.items())[-limit - 1:] if d != exclude_day][-limit:]

    def density(self, day_idx: int, stream: str) -> float | None:
        o = self._obs.get((day_idx, stream))
        if o and o[2] and o[1] > 0:
            return o[0] / o[1]
        return None

    def estimate(self, day_idx: int, stream: str) -> tuple[float | None, str | None]:
        num = den = 0.0
        for other, (logs, blocks, _done) in self._by_day.get(day_idx, {}).items():
            if other == stream or blocks < 200:
                continue
            r = self.ratio(stream, other)
            if r is None or r[1] > 0.15**2:
                continue  # a stream that does not move with this one says little about it
            w = 1.0 / (r[1] + 1.0 / (logs + 1.0))
            num += w * r[0] * (logs / blocks)
            den += w
        if den > 0:
            return num / den, "same_day"
        days = self._done.get(stream)
        if days:
            cands = [d for d in days if d != day_idx]
            if cands:
                best = min(cands, key=lambda d: (0 if d < day_idx else 1, abs(day_idx - d)))
                return days[best], "other_day"
        return None, None

    # -------------------------------------------------------------- intraday shape
    def register(self, day_idx: int, stream: str) -> None:
        """A planner of this (day, stream) is about to fetch (so others may wait for it)."""
        self._registered.setdefault(day_idx, set()).add(stream)

    def registered(self, day_idx: int) -> set[str]:
        return self._registered.get(day_idx, set())

    def observe(self, day_idx: int, stream: str, start: int, end: int, a: int, b: int, n: int,
                knots: list[tuple[float, float]] | None = None, *, hint: bool = False) -> None:
        """Sub-range [a, b] of the day [start, end] held n logs (knots: where, see sample_knots);
        ``hint``: a provider said about n logs fit in [a, b] (not fetched yet)."""
        key = (day_idx, stream)
        c = self._cdf.get(key)
        if c is None or (c.start, c.end) != (start, end):
            c = self._cdf[key] = Cdf(start, end)
            if len(self._cdf) > _KEEP:
                for old in list(self._cdf)[: _KEEP // 4]:
                    if old[0] != day_idx:
                        self._cdf.pop(old, None)
                        self._events.pop(old, None)
                live = {d for d, _ in self._cdf}
                for d in [d for d in self._registered if d not in live]:
                    del self._registered[d]
        if hint:
            c.hint(a, b, n)
        else:
            c.add(a, b, n, knots)
        ev = self._events.pop(key, None)
        if ev is not None:
            ev.set()

    def cdf(self, day_idx: int, stream: str) -> Cdf | None:
        c = self._cdf.get((day_idx, stream))
        return c if c is not None and c.covered > c.start else None

    async def wait_for(self, day_idx: int, stream: str, timeout: float) -> bool:
        """Until the (day, stream) has fetched something (True) or ``timeout`` seconds (False)."""
        if self.cdf(day_idx, stream) is not None:
            return True
        ev = self._events.setdefault((day_idx, stream), asyncio.Event())
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def wait_timeout(self) -> float:
        return 5.0 if self.latency is None else min(15.0, max(1.0, 4.0 * self.latency))

    def note_latency(self, seconds: float) -> None:
        self.latency = seconds if self.latency is None else 0.9 * self.latency + 0.1 * seconds

    def _fold_profile(self, c: Cdf) -> None:
        total = c.at(c.end + 1)
        blocks = c.end - c.start + 1
        g = [c.at(c.start + blocks * j / GRID) / total for j in range(GRID + 1)]
        if self._profile is None:
            self._profile = g
        else:
            self._profile = [0.85 * p + 0.15 * x for p, x in zip(self._profile, g)]

    @property
    def profile(self) -> list[float] | None:
        return self._profile

    def shape(self, day_idx: int, stream: str, start: int, end: int) -> tuple[Shape, str | None, float]:
        """The day's shape for ``stream`` and its guide: (shape, guide stream or None, variance of
        log(stream / guide)). The guide is the same day's other stream with the steadiest ratio."""
        best: tuple[float, str] | None = None
        for other in sorted(self.registered(day_idx) | set(self._by_day.get(day_idx, {}))):
            if other == stream:
                continue
            c = self.cdf(day_idx, other)
            r = self.ratio(stream, other)
            if c is None or r is None or (c.start, c.end) != (start, end):
                continue
            if best is None or r[1] < best[0]:
                best = (r[1], other)
        if best is not None:
            sh = Shape(start, end, self._profile, self._cdf[(day_idx, best[1])])
            if sh.guide is not None:
                return sh, best[1], best[0]
        return Shape(start, end, self._profile), None, 0.0



class RangePlanner:
    """Plans the sub-ranges of one (day, stream). ``limits`` is shared between planners."""

    def __init__(
        self,
        limits: ProviderLimits,
        target_logs: int = 5000,
        initial_span: int = 2000,
        max_span: int = 50_000,
        *,
        fill: float = 0.95,
        fill_uncertain: float = 0.9,
        fail_cost: float | None = None,
        grow: float = 4.0,
        book: DensityBook | None = None,
        day_idx: int | None = None,
        stream: str | None = None,
    ):
        self.limits = limits
        self.target_logs = max(1, int(target_logs))
        self.initial_span = max(1, int(initial_span))
        self.max_span = max(1, int(max_span))
        self.fill = fill
        self.fill_uncertain = fill_uncertain
        self.fail_cost = fail_cost
        self.grow = grow
        self.book = book
        self.day_idx = day_idx
        self.stream = stream
        self._density: float | None = None  # logs per block
        self._confidence: str | None = None  # "observed" | "same_day" | "other_day" | "seed" | None
        self._last_span: int | None = None
        self._samples = 0
        self._day: tuple[int, int] | None = None  # the (day, stream)'s whole block range
        self._pred: tuple[int, int, float, float] | None = None  # (from, to, logs, var of log)
        # counters (per planner = per (day, stream))
        self.calls = 0
        self.oversize = 0
        self.logs = 0
        self.blocks = 0

    # ------------------------------------------------------------------ estimates
    def seed_density(self, logs_per_block: float | None) -> None:
        """Start from the stream's density on the previous day (logs per block)."""
        if logs_per_block is None or logs_per_block < 0 or not math.isfinite(logs_per_block):
            return
        if self._samples == 0:
            self._density = float(logs_per_block)
            self._confidence = "seed"

    @property
    def density(self) -> float | None:
        """The current estimate (logs/block); after a day, the day's observed density."""
        if self.blocks:
            return self.logs / self.blocks
        return self._density

    def _cap(self) -> int | None:
        return self.limits.max_results

    def _target(self, confident: bool) -> float:
        cap = self._cap()
        if cap:
            return max(1.0, cap * (self.fill if confident else self.fill_uncertain))
        # Cap unknown: probe upwards (each success may double the target, up to 4x target_logs):
        # a provider with a cap says so in its first too-large error (one failed call), one
        # without a cap is then used with fewer, larger calls.
        ok = self.limits.max_ok or 0
        return float(max(self.target_logs, min(2 * ok, 4 * self.target_logs)))

    @property
    def target(self) -> int:
        return int(self._target(True))

    def _cap_span(self, span: int) -> int:
        span = min(span, self.max_span)
        if self.limits.max_range:
            span = min(span, self.limits.max_range)
        return max(1, span)

    @property
    def _keyed(self) -> bool:
        return self.book is not None and self.day_idx is not None and self.stream is not None

    def _refresh_from_book(self) -> None:
        if not self._keyed or self._samples:
            return
        if self._confidence in ("same_day",):
            return
        d, conf = self.book.estimate(self.day_idx, self.stream)
        if d is None:
            return
        if conf == "same_day" or self._confidence is None:
            self._density, self._confidence = d, conf

    def begin(self, start: int, end: int) -> None:
        """The (day, stream) covers blocks [start, end] (fetch_tiled calls this first)."""
        self._day = (start, end)
        if self._keyed:
            self.book.register(self.day_idx, self.stream)

    def wait_candidate(self) -> str | None:
        """Before the first call: the stream of the same day worth waiting for, if any.

        When this stream may need more than one call (its past days say so) and the day's other
        streams are fetched concurrently, one of them with a steady ratio to this one and a lower
        density (likely one call over the whole day) tells this day's total and shape exactly
        enough to cut full calls; without it, the first call is a guess over past days."""
        if not self._keyed or self._samples or self._day is None or not self._cap():
            return None
        book, day = self.book, self.day_idx
        start, end = self._day
        if book.shape(day, self.stream, start, end)[1] is not None:
            return None  # a guide has fetched already
        prior = sorted(book.samples(self.stream, exclude_day=day))
        if len(prior) < 5:
            return None
        if prior[int(0.9 * (len(prior) - 1))] * (end - start + 1) <= 0.85 * self._cap():
            return None  # one call will do
        med = prior[len(prior) // 2]
        best: tuple[float, str] | None = None
        for other in sorted(book.registered(day)):
            r = book.ratio(self.stream, other) if other != self.stream else None
            if r is None or r[1] > 0.1**2:
                continue
            po = sorted(book.samples(other, exclude_day=day))
            if len(po) < 5 or po[len(po) // 2] >= med:
                continue  # waiting only on sparser streams: no cycles
            if best is None or r[1] < best[0]:
                best = (r[1], other)
        return best[1] if best else None

    def _shape(self) -> tuple[Shape, str | None, float]:
        start, end = self._day  # type: ignore[misc]
        if self._keyed:
            return self.book.shape(self.day_idx, self.stream, start, end)
        return Shape(start, end, None), None, 0.0

    def _estimate(self, pos: int, shape: Shape, guide: str | None, rvar: float) -> tuple[float, float] | None:
        """(expected logs of this stream over its whole day, variance of its log) from the
        day's guide stream and from what this stream fetched of the day so far; None if neither."""
        ests: list[tuple[float, float]] = []
        if guide is not None and shape.total is not None:
            r = self.book.ratio(self.stream, guide)  # type: ignore[union-attr]
            if r is not None:
                var = max(rvar, 0.015**2) + (0.05 * (1.0 - shape.g_cov)) ** 2
                ests.append((math.log(r[0] * shape.total + 0.5), var))
        start = self._day[0]  # type: ignore[index]
        if self.blocks and start + self.blocks == pos:
            g = shape.at(pos)
            if g >= 0.03:
                if shape.guide is not None and pos <= shape.guide.covered:
                    s_var = 1.0 / (shape.total * g + 1.0)
                else:
                    s_var = ((0.02 if shape.kind != "even" else 0.15) / g) ** 2
                ests.append((math.log((self.logs + 0.5) / g), 1.0 / (self.logs + 1.0) + s_var))
        if not ests:
            return None
        w = sum(1.0 / v for _, v in ests)
        return math.exp(sum(x / v for x, v in ests) / w), 1.0 / w

    # ------------------------------------------------------------------ planning
    def plan(self, from_block: int, end: int) -> int:
        """The end block of the next attempt starting at ``from_block`` (<= ``end``)."""
        remaining = end - from_block + 1
        if remaining <= 0:
            raise ValueError("nothing left to plan")
        if self._day is None or self._day[1] != end or from_block < self._day[0]:
            self._day = (from_block, end)
        self._refresh_from_book()
        self._pred = None
        shape, guide, rvar = self._shape()
        est = self._estimate(from_block, shape, guide, rvar)
        if est is not None:
            return self._plan_equal(from_block, end, shape, est[0], est[1])
        d = self._density
        if d is None:
            span = self.initial_span
            if self._last_span:
                span = max(span, int(self._last_span * self.grow))
            return from_block + self._cap_span(min(span, remaining)) - 1
        confident = self._confidence in ("observed", "same_day")
        span = None if confident else self._bayes_span(from_block, end, shape)
        if span is not None:
            return from_block + self._cap_span(min(span, remaining)) - 1
        return self._plan_equal(from_block, end, shape, d * shape.blocks, None,
                                self._target(confident))

    def _plan_equal(self, pos: int, end: int, shape: Shape, total: float, var: float | None,
                    target: float | None = None) -> int:
        """Split the rest of the day into n calls cut at equal expected counts (the day's shape),
        not equal blocks. Without a variance: the fewest calls of at most ``target`` logs each.
        With one (a confident estimate, log-normal error) and a known cap: the n with the least
        expected cost, n calls + P(a call exceeds the cap) x (1 + fail_cost) — a failed call is
        cheap to recover from with a maximal suggested range, so a well-predicted day gets
        calls close to full, and an uncertain estimate just under one cap still gets one call."""
        g0 = shape.at(pos)
        grem = max(0.0, shape.at(end + 1) - g0)
        expected = total * grem
        cap = self._cap()
        if var is not None and cap and expected > 0:
            n = self._least_cost_n(expected, var, cap)
        else:
            if target is None:
                target = self._target(True)
            n = max(1, math.ceil(expected / target)) if expected > 0 else 1
        if self.limits.max_range:
            n = max(n, math.ceil((end - pos + 1) / self.limits.max_range))
        if n == 1 or grem <= 0:
            to = end
        else:
            to = shape.block_at(g0 + grem / n, pos + 1, end + 1) - 1
        span = self._cap_span(to - pos + 1)
        if var is not None:
            mu = total * (shape.at(pos + span) - g0)
            self._pred = (pos, pos + span - 1, mu, var + 1.0 / max(mu, 1.0))
        return pos + span - 1

    def _least_cost_n(self, expected: float, var: float, cap: int) -> int:
        kappa = self.book.kappa if self.book is not None else 1.0
        fc = self.fail_cost
        if fc is None:
            fc = self.book.fail_cost() if self.book is not None else 1.0
        n0 = max(1, math.ceil(expected / cap))
        best: tuple[float, int] | None = None
        for n in range(n0, n0 + 4):
            mu = expected / n
            sigma = math.sqrt(kappa * (var + 1.0 / max(mu, 1.0)))
            p_over = 0.5 * math.erfc(math.log(cap / mu) / (sigma * math.sqrt(2.0)))
            # the parts share the estimate's error, and the rest is re-planned after each call
            cost = n + p_over * (1.0 + fc) * (1.0 + 0.25 * (n - 1))
            if best is None or cost < best[0] - 1e-9:
                best = (cost, n)
        return best[1]  # type: ignore[index]

    def _bayes_span(self, pos: int, end: int, shape: Shape) -> int | None:
        """First call of a day with only other days to go by: pick the span that minimises the
        expected cost (calls + fail_cost x failed calls) over the stream's past densities.

        Model per candidate span s (cut at 1/k of the rest's expected logs, k = 1..): with
        density p, the first call holds p*w(s) logs (w: blocks weighted by the day's shape);
        above the cap it fails (1 call + fail_cost), the maximal suggested range is then fetched
        (1 call) and the rest planned at ``fill`` of the cap; below the cap it succeeds and the
        rest is planned the same way. Needs the cap (max_results) and >= 5 past days.
        """
        cap = self._cap()
        if not cap or self.book is None or self.stream is None:
            return None
        prior = self.book.samples(self.stream, exclude_day=self.day_idx)
        if len(prior) < 5:
            return None
        fail_cost = self.fail_cost if self.fail_cost is not None else self.book.fail_cost()
        per_call = cap * self.fill
        g0 = shape.at(pos)
        grem = max(0.0, shape.at(end + 1) - g0)
        w_rem = shape.blocks * grem
        max_k = max(2, min(64, math.ceil(max(prior) * w_rem / per_call) + 2))
        best: tuple[float, int] | None = None
        for k in range(1, max_k + 1):
            to = end if k == 1 else shape.block_at(g0 + grem / k, pos + 1, end + 1) - 1
            s_k = self._cap_span(to - pos + 1)
            w_first = shape.blocks * (shape.at(pos + s_k) - g0)
            cost = 0.0
            for p in prior:
                first = p * w_first
                if first > cap:
                    rest = max(0.0, p * w_rem - cap)
                    cost += 2 + fail_cost + math.ceil(rest / per_call)
                else:
                    rest = p * (w_rem - w_first)
                    cost += 1 + (math.ceil(rest / per_call) if rest > 1e-9 else 0)
            cost /= len(prior)
            if best is None or cost < best[0] - 1e-9:
                best = (cost, s_k)
        return best[1] if best else None

    def on_success(self, from_block: int, to_block: int, n_logs: int,
                   knots: list[tuple[float, float]] | None = None) -> None:
        span = to_block - from_block + 1
        self.calls += 1
        self.limits.served(n_logs)
        self.logs += n_logs
        self.blocks += span
        self._last_span = span
        self._samples += 1
        pred, self._pred = self._pred, None
        if self.book is not None:
            self.book.calls += 1
            cap = self._cap()
            if pred is not None and pred[:2] == (from_block, to_block) and cap and pred[2] >= 0.3 * cap:
                e = math.log((n_logs + 0.5) / (pred[2] + 0.5))
                self.book.calibrate(e / math.sqrt(pred[3]))
        # Density: what we saw so far today, the most recent sub-range weighing most (activity
        # drifts over a day). A range with no logs only says the density is below ~1/span.
        obs = n_logs / span if n_logs else 0.5 / span
        if self._confidence != "observed" or self._density is None:
            self._density = obs if self.blocks == span else (self.logs + 0.5) / self.blocks
        else:
            self._density = 0.6 * obs + 0.4 * self._density
        self._confidence = "observed"
        if self._keyed:
            self.book.record(self.day_idx, self.stream, self.logs, self.blocks, done=False)
            if self._day is not None:
                self.book.observe(self.day_idx, self.stream, self._day[0], self._day[1],
                                  from_block, to_block, n_logs, knots)

    def finish(self) -> None:
        """The (day, stream) is complete: record its density in the book."""
        if self._keyed and self.blocks:
            self.book.record(self.day_idx, self.stream, self.logs, self.blocks, done=True)

    def on_too_large(self, from_block: int, to_block: int, err: TooLarge) -> int:
        """Record a failed oversize attempt; return the end block of the retry (< to_block)."""
        span = to_block - from_block + 1
        self.calls += 1
        self.oversize += 1
        pred, self._pred = self._pred, None
        if self.book is not None:
            self.book.calls += 1
            self.book.oversize += 1
        self.limits.learn(err, span)
        new_to: int | None = None
        sug = err.suggested
        if sug is not None and sug[0] <= from_block <= sug[1] < to_block:
            new_to = sug[1]
        elif sug is not None and sug[0] > from_block and sug[1] < to_block and sug[0] <= sug[1]:
            # A suggestion that does not start where we did: use its size.
            new_to = from_block + (sug[1] - sug[0])
        if new_to is None and err.max_range and err.max_range < span:
            new_to = from_block + err.max_range - 1
        if new_to is None and self.limits.max_range and self.limits.max_range < span:
            new_to = from_block + self.limits.max_range - 1
        if new_to is None:
            new_to = from_block + span // 2 - 1
        new_to = max(from_block, min(new_to, to_block - 1))
        # What the failure says about the density here.
        cap = err.max_results or self.limits.max_results
        if self.book is not None and pred is not None and pred[:2] == (from_block, to_block) and cap:
            # censored: the call held more than the cap, so the error was at least log(cap / mu)
            e = max(0.0, math.log(cap / max(pred[2], 1.0)))
            self.book.calibrate(e / math.sqrt(pred[3]) + 1.0)
        if sug is not None and new_to == sug[1] and cap:
            # A maximal suggestion: about `cap` logs in [from, sug_end].
            self._density = cap / (new_to - from_block + 1)
            self._confidence = "observed"
            if self._keyed and self._day is not None and sug[0] <= from_block:
                self.book.observe(self.day_idx, self.stream, self._day[0], self._day[1],
                                  from_block, new_to, cap, hint=True)
        elif cap:
            lower = cap / span
            if self._density is None or self._density < lower:
                self._density = lower * 1.1
        elif self._density is not None and err.kind != "range":
            self._density *= 2
        return new_to



# ---------------------------------------------------------------------- fetch loop
async def fetch_tiled(
    rpc: Any,
    start: int,
    end: int,
    address: Any,
    topics: Any,
    planner: RangePlanner,
    *,
    transform: Callable[[list[RawLog], int, int], Any] | None = None,
    invalid_retries: int = 3,
) -> AsyncIterator[tuple[int, int, Any]]:
    """Yield (from, to, logs) for consecutive sub-ranges tiling [start, end] exactly, in order.

    ``transform(logs, from, to)`` (optional, e.g. a decoder) runs on each response before it is
    yielded; when it raises InvalidResponse the same sub-range is fetched again (up to
    ``invalid_retries`` times, then RpcUnavailable) — a malformed response is never half-used.
    The yielded third item is then transform's result instead of the raw logs.

    TooLarge: the failing sub-range is split (planner.on_too_large); a single block that is still
    too large raises Unsplittable. Other errors propagate (the client already retried them).

    With a DensityBook, the first call may wait (at most the book's wait_timeout) for a sparser
    stream of the same day that tells this one's total and shape (RangePlanner.wait_candidate).
    """
    if end < start:
        return
    stats = getattr(rpc, "stats", None)
    planner.begin(start, end)
    book = planner.book if planner._keyed else None
    if book is not None:
        await asyncio.sleep(0)  # the day's other streams (tasks started with this one) register
        guide = planner.wait_candidate()
        if guide is not None:
            await book.wait_for(planner.day_idx, guide, book.wait_timeout())  # type: ignore[arg-type]
    pos = start
    while pos <= end:
        to = planner.plan(pos, end)
        invalid = 0
        while True:
            t0 = time.monotonic()
            try:
                logs = await rpc.get_logs(pos, to, address, topics)
            except Unsplittable:
                raise
            except TooLarge as e:
                if stats is not None:
                    stats.oversize_failures += 1
                if to <= pos:
                    raise Unsplittable(
                        f"block {pos} alone exceeds the provider's response limit: {e.message}",
                        e.suggested,
                        e.max_range,
                        e.max_results,
                        kind=e.kind,
                        code=e.code,
                        http_status=e.http_status,
                    ) from None
                to = planner.on_too_large(pos, to, e)
                continue
            if book is not None:
                book.note_latency(time.monotonic() - t0)
            if transform is not None:
                try:
                    out = transform(logs, pos, to)
                except InvalidResponse as e:
                    invalid += 1
                    if stats is not None:
                        stats.invalid_responses += 1
                    if invalid > invalid_retries:
                        raise RpcUnavailable(
                            f"blocks {pos}-{to}: invalid response {invalid} times: {e.message}"
                        ) from None
                    continue
            else:
                out = logs
            break
        planner.on_success(pos, to, len(logs), sample_knots(logs, pos, to) if book is not None else None)
        if to >= end:
            planner.finish()
        # Hand the response over without keeping it: a suspended generator's locals stay alive,
        # so `logs` would outlive the consumer's insert wait and the next call (two parsed
        # responses per stream at once, and freed pages pinned in the interpreter's arenas).
        tile = [(pos, to, out)]
        del logs, out
        yield tile.pop()
        pos = to + 1
