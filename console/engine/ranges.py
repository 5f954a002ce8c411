"""Adaptive eth_getLogs range planning (DESIGN §6.3).

For one (day, stream) the planner hands out consecutive sub-ranges [from, to] that tile the day's
block range exactly (fetch_tiled drives it). Sizing:

- a *target* log count per call: once the provider's cap is known (``limits.max_results``, learned
  from its too-large texts), ``fill`` (0.95) of the cap; before that ``target_logs``, probing
  upwards to 2x the largest response served so far (so a capped provider reveals its cap in one
  failed call, and an uncapped one gets fewer, larger calls);
- a *density* (logs/block) estimate, best first: what this (day, stream) has observed so far
  (recent sub-ranges weigh most); the same day's other streams times their usual ratio
  (DensityBook, "same_day"); previous days of the stream ("other_day", or ``seed_density``);
- the remaining blocks are split into ``n = ceil(estimated_logs / target)`` equal parts, so a day
  with 2.3 caps of logs takes 3 calls of ~0.77 cap, not 2 full calls and a sliver;
- the first call of a day with only other days to go by is sized by expected cost over the stream's
  past densities (calls + fail_cost x failed calls; see _bayes_span), with fail_cost steered so
  that the run's failed oversize calls stay under 5%;
- spans never exceed ``limits.max_range`` (learned) nor ``max_span``.

On too-large only the failing sub-range is split: at the provider's suggested end when the message
has one (Alchemy/Infura/Erigon: the suggestion's end becomes this attempt's end), else at a stated
max range, else in half; the rest of the day is re-planned after the retried piece succeeds.

Why not aim at half the cap: that costs ~2x the minimum number of calls (ceil(logs/cap)); the
product goal is <= 1.10x with <= 5% failed oversize calls, and a maximal suggested range makes an
occasional overshoot cheap (one failed call, then a call that is exactly full). Figures from the
simulation in tests/engine/test_ranges.py (Alchemy-like fake, 10,000-log cap).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Callable

from .errors import InvalidResponse, RpcUnavailable, TooLarge, Unsplittable

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


class DensityBook:
    """Shared (per run) memory of observed densities, used to seed planners.

    Estimates for a (day, stream), best first:
    1. *same day, other streams*: streams of one day move together (a trade emits a USDC.e leg and
       a CTF leg), so once one stream of the day has been fetched (even partly), another stream's
       density is that density times the ratio of the two streams seen on earlier days;
    2. *previous days of the same stream*: the nearest earlier day (else the nearest later one).
    ``estimate`` returns (density, confidence) with confidence "same_day" | "other_day" | None.
    Planners given a book record into it as they go (``record``); the lead may also seed it from
    SQLite after a restart with ``record(day_idx, stream, logs, blocks, done=True)``.
    """

    def __init__(self) -> None:
        # (day, stream) -> [logs, blocks, done]
        self._obs: dict[tuple[int, str], list] = {}
        # (stream_a, stream_b) -> EWMA of density_a / density_b over complete days
        self._ratio: dict[tuple[str, str], float] = {}
        # eth_getLogs calls / failed oversize calls of every planner using this book
        self.calls = 0
        self.oversize = 0

    def fail_cost(self, target_rate: float = 0.05) -> float:
        """How much a failed oversize call should weigh when sizing a first call: a controller that
        keeps the run's failed-call rate under ``target_rate`` (the product goal is <= 5%)."""
        if self.calls < 20:
            return 1.0
        rate = self.oversize / self.calls
        if rate < 0.6 * target_rate:
            return 0.5
        if rate < 0.85 * target_rate:
            return 1.0
        return 3.0

    def record(self, day_idx: int, stream: str, logs: int, blocks: int, done: bool = False) -> None:
        self._obs[(day_idx, stream)] = [int(logs), int(blocks), bool(done)]
        if not done or blocks <= 0:
            return
        d_self = (logs + 0.5) / blocks
        for (d, other), (l2, b2, done2) in list(self._obs.items()):
            if d != day_idx or other == stream or not done2 or b2 <= 0:
                continue
            d_other = (l2 + 0.5) / b2
            for key, r in (((stream, other), d_self / d_other), ((other, stream), d_other / d_self)):
                old = self._ratio.get(key)
                self._ratio[key] = r if old is None else 0.7 * old + 0.3 * r

    def samples(self, stream: str, exclude_day: int | None = None, limit: int = 256) -> list[float]:
        """Densities of the stream's complete days (the empirical prior), most recent days last."""
        out = [
            (d, logs / blocks)
            for (d, s), (logs, blocks, done) in self._obs.items()
            if s == stream and done and blocks > 0 and d != exclude_day
        ]
        out.sort()
        return [x for _, x in out[-limit:]]

    def density(self, day_idx: int, stream: str) -> float | None:
        o = self._obs.get((day_idx, stream))
        if o and o[2] and o[1] > 0:
            return o[0] / o[1]
        return None

    def estimate(self, day_idx: int, stream: str) -> tuple[float | None, str | None]:
        num = den = 0.0
        for (d, other), (logs, blocks, _done) in self._obs.items():
            if d != day_idx or other == stream or blocks < 200:
                continue
            r = self._ratio.get((stream, other))
            if r is None:
                continue
            w = float(logs + 1)
            num += w * r * (logs / blocks)
            den += w
        if den > 0:
            return num / den, "same_day"
        best = None
        for (d, s), (logs, blocks, done) in self._obs.items():
            if s != stream or not done or blocks <= 0 or d == day_idx:
                continue
            key = (0 if d < day_idx else 1, abs(day_idx - d))
            if best is None or key < best[0]:
                best = (key, logs / blocks)
        if best is not None:
            return best[1], "other_day"
        return None, None


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

    def _refresh_from_book(self) -> None:
        if self.book is None or self.day_idx is None or self.stream is None or self._samples:
            return
        if self._confidence in ("same_day",):
            return
        d, conf = self.book.estimate(self.day_idx, self.stream)
        if d is None:
            return
        if conf == "same_day" or self._confidence is None:
            self._density, self._confidence = d, conf

    # ------------------------------------------------------------------ planning
    def plan(self, from_block: int, end: int) -> int:
        """The end block of the next attempt starting at ``from_block`` (<= ``end``)."""
        remaining = end - from_block + 1
        if remaining <= 0:
            raise ValueError("nothing left to plan")
        self._refresh_from_book()
        d = self._density
        if d is None:
            span = self.initial_span
            if self._last_span:
                span = max(span, int(self._last_span * self.grow))
        else:
            confident = self._confidence in ("observed", "same_day")
            span = None
            if not confident:
                span = self._bayes_span(remaining)
            if span is None:
                target = self._target(confident)
                est = d * remaining
                n = max(1, math.ceil(est / target)) if est > 0 else 1
                span = math.ceil(remaining / n)
        span = self._cap_span(min(span, remaining))
        return from_block + span - 1

    def _bayes_span(self, remaining: int) -> int | None:
        """First call of a day with only other days to go by: pick the span that minimises the
        expected cost (calls + fail_cost x failed calls) over the stream's past densities.

        Model per candidate span s (remaining/k for k = 1..): with density p, the first call holds
        p*s logs; above the cap it fails (1 call + fail_cost), the maximal suggested range is then
        fetched (1 call) and the rest planned at ``fill`` of the cap; below the cap it succeeds and
        the rest is planned the same way. Needs the cap (max_results) and >= 5 past days.
        """
        cap = self._cap()
        if not cap or self.book is None or self.stream is None:
            return None
        prior = self.book.samples(self.stream, exclude_day=self.day_idx)
        if len(prior) < 5:
            return None
        fail_cost = self.fail_cost if self.fail_cost is not None else self.book.fail_cost()
        per_call = cap * self.fill
        max_k = max(2, min(64, math.ceil(max(prior) * remaining / per_call) + 2))
        best: tuple[float, int] | None = None
        for k in range(1, max_k + 1):
            s_k = self._cap_span(math.ceil(remaining / k))
            cost = 0.0
            for p in prior:
                first = p * s_k
                if first > cap:
                    rest = max(0.0, p * remaining - cap)
                    cost += 2 + fail_cost + math.ceil(rest / per_call)
                else:
                    rest = p * (remaining - s_k)
                    cost += 1 + (math.ceil(rest / per_call) if rest > 0 else 0)
            cost /= len(prior)
            if best is None or cost < best[0] - 1e-9:
                best = (cost, s_k)
        return best[1] if best else None

    def on_success(self, from_block: int, to_block: int, n_logs: int) -> None:
        span = to_block - from_block + 1
        self.calls += 1
        self.limits.served(n_logs)
        self.logs += n_logs
        self.blocks += span
        self._last_span = span
        self._samples += 1
        if self.book is not None:
            self.book.calls += 1
        # Density: what we saw so far today, the most recent sub-range weighing most (activity
        # drifts over a day). A range with no logs only says the density is below ~1/span.
        obs = n_logs / span if n_logs else 0.5 / span
        if self._confidence != "observed" or self._density is None:
            self._density = obs if self.blocks == span else (self.logs + 0.5) / self.blocks
        else:
            self._density = 0.6 * obs + 0.4 * self._density
        self._confidence = "observed"
        if self.book is not None and self.day_idx is not None and self.stream is not None:
            self.book.record(self.day_idx, self.stream, self.logs, self.blocks, done=False)

    def finish(self) -> None:
        """The (day, stream) is complete: record its density in the book."""
        if self.book is not None and self.day_idx is not None and self.stream is not None and self.blocks:
            self.book.record(self.day_idx, self.stream, self.logs, self.blocks, done=True)

    def on_too_large(self, from_block: int, to_block: int, err: TooLarge) -> int:
        """Record a failed oversize attempt; return the end block of the retry (< to_block)."""
        span = to_block - from_block + 1
        self.calls += 1
        self.oversize += 1
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
        if sug is not None and new_to == sug[1] and cap:
            # A maximal suggestion: about `cap` logs in [from, sug_end].
            self._density = cap / (new_to - from_block + 1)
            self._confidence = "observed"
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
    transform: Callable[[list[dict], int, int], Any] | None = None,
    invalid_retries: int = 3,
) -> AsyncIterator[tuple[int, int, Any]]:
    """Yield (from, to, logs) for consecutive sub-ranges tiling [start, end] exactly, in order.

    ``transform(logs, from, to)`` (optional, e.g. a decoder) runs on each response before it is
    yielded; when it raises InvalidResponse the same sub-range is fetched again (up to
    ``invalid_retries`` times, then RpcUnavailable) — a malformed response is never half-used.
    The yielded third item is then transform's result instead of the raw logs.

    TooLarge: the failing sub-range is split (planner.on_too_large); a single block that is still
    too large raises Unsplittable. Other errors propagate (the client already retried them).
    """
    if end < start:
        return
    stats = getattr(rpc, "stats", None)
    pos = start
    while pos <= end:
        to = planner.plan(pos, end)
        invalid = 0
        while True:
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
        planner.on_success(pos, to, len(logs))
        if to >= end:
            planner.finish()
        yield pos, to, out
        pos = to + 1
