"""The simulated world: a block timeline plus the logs of every day, generated lazily per day.

`build_world()` is instant: nothing is generated until a day is asked for. A day's logs are the
events its live markets emit in its block range (markets.py) plus its noise (noise.py); each
log is serialised once, to the exact JSON bytes eth_getLogs returns, and indexed by
(address, topic0) with block numbers for bisect (index.py). Days are kept in an LRU sized for
the density, so a `full` world (1048 days) stays bounded in memory while `demo` keeps all.

Determinism: every random draw is keyed by (seed, what, where) — a day's content does not
depend on which other days were generated before it, so the same seed gives the same world
whatever order a server or a test asks for days in.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import random
from collections import OrderedDict
from typing import Iterable

from console.protocol import DEFAULT_PROFILE, POLYMARKET_SWITCH, ProtocolProfile

from .chain import Chain, day_start_ts
from .density import DENSITIES, Density
from .index import DayLogs, FilterSpec, serialize_day
from .markets import (
    LIFE_DAYS_WEIGHTS,
    LOOKBACK_DAYS,
    REDEEM_TAIL,
    WITHDRAW_DELAY,
    MarketParams,
    MarketResult,
    MarketSim,
    _h256,
    _poisson,
)
from .noise import noise_txs

CHAIN_ID = 137
# relevant logs produced per trade slot on average (measured on `demo`, see bench/devchain.py);
# used to turn a day's relevant-log target into a number of trade slots.
LOGS_PER_SLOT = 5.4


class World:
    """A deterministic simulated Polygon chain with Polymarket-like activity."""

    chain_id = CHAIN_ID

    def __init__(self, density: str = "demo", seed: int = 1, start_date: dt.date | None = None,
                 days: int | None = None, profile: ProtocolProfile = DEFAULT_PROFILE,
                 day_cache: int | None = None, log_timestamps: bool = True):
        if density not in DENSITIES:
            raise ValueError(f"unknown density {density!r} (choose from {', '.join(DENSITIES)})")
        self.density: Density = DENSITIES[density]
        self.density_name = density
        self.seed = int(seed)
        self.start_date = start_date or self.density.default_start
        self.days = int(days if days is not None else self.density.default_days)
        if self.days < 1:
            raise ValueError("days must be >= 1")
        self.profile = profile
        self.log_timestamps = log_timestamps
        self.chain = Chain(self.seed, self.start_date, self.days)
        self.head = self.chain.head
        self.last_day_block = self.chain.last_day_block
        self._day_cache: OrderedDict[int, DayLogs] = OrderedDict()
        self._day_cache_max = day_cache or (self.days if self.days <= 40 else 12)
        self._params: dict[int, list[MarketParams]] = {}
        self._plans: dict[int, dict] = {}
        self._wsum: dict[int, float] = {}
        self._results: OrderedDict[int, MarketResult] = OrderedDict()
        self._results_max = self.density.markets_per_day * (LOOKBACK_DAYS + 6)
        self._wallets: dict[int, str] = {}
        self._seed_b = str(self.seed).encode()
        sw = POLYMARKET_SWITCH
        self.switch_block = (
            self.chain.first_block_at_or_after(day_start_ts(sw))
            if self.start_date < sw < self.start_date + dt.timedelta(days=self.days + LOOKBACK_DAYS)
            else None
        )

    # -- chain ---------------------------------------------------------------------------------
    def block_timestamp(self, n: int) -> int:
        return self.chain.timestamp(n)

    def block_hash(self, n: int) -> str:
        return self.chain.block_hash(n)

    def day_bounds(self, day_idx: int) -> tuple[int, int]:
        return self.chain.day_bounds(day_idx)

    def day_date(self, day_idx: int) -> dt.date:
        return self.start_date + dt.timedelta(days=day_idx)

    def wallet(self, i: int) -> str:
        a = self._wallets.get(i)
        if a is None:
            a = "0x" + hashlib.blake2b(b"w" + self._seed_b + i.to_bytes(8, "little"), digest_size=20).hexdigest()
            self._wallets[i] = a
        return a

    # -- day plans and market schedule ------------------------------------------------------------
    def day_plan(self, d: int) -> dict:
        p = self._plans.get(d)
        if p is None:
            day = self.day_date(d)
            s, e = self.day_bounds(d)
            t0 = day_start_ts(day)
            edges = [s] + [self.chain.first_block_at_or_after(t0 + h * 3600) for h in range(1, 24)] + [e + 1]
            target = self.density.target(self.seed, d, day, self.days)
            p = {
                "start": s, "end": e, "edges": edges, "target": target,
                "weights": self.density.hour_weights(self.seed, d, day, self.days),
                "slots": target / LOGS_PER_SLOT,
            }
            self._plans[d] = p
        return p

    def _mass(self, mp: MarketParams, d: int) -> float:
        m = mp.hour_mass.get(d)
        if m is None:
            plan = self.day_plan(d)
            lo, hi = mp.b_create + 40, min(mp.b_resolve - 1, mp.hard_end, plan["end"])
            m = 0.0
            edges, weights = plan["edges"], plan["weights"]
            for h in range(24):
                a, b = edges[h], edges[h + 1] - 1
                ov = min(b, hi) - max(a, lo) + 1
                if ov > 0 and b >= a:
                    m += weights[h] * ov / (b - a + 1)
            mp.hour_mass[d] = m
        return m

    def market_params(self, c: int) -> list[MarketParams]:
        """Markets created on day c (hash-derived; cheap)."""
        ps = self._params.get(c)
        if ps is not None:
            return ps
        ps = []
        s, e = self.day_bounds(c)
        day = self.day_date(c)
        post = day >= POLYMARKET_SWITCH
        prof = self.profile
        exchanges = [x.address for x in prof.exchanges if x.active_on(day)] or [prof.exchanges[0].address]
        coll = prof.active(prof.collateral, day)
        coll = coll[0] if coll else prof.collateral[0].address
        for j in range(self.density.markets_per_day):
            mid = c * 1000 + j
            rng = random.Random(_h256(self.seed, "mkt", mid))
            b_create = s + int(rng.random() * (e - s - 600))
            life_days = rng.choices(range(len(LIFE_DAYS_WEIGHTS)), LIFE_DAYS_WEIGHTS)[0]
            b_resolve = b_create + life_days * 43_200 + 3_000 + rng.randrange(40_000)
            hard_end = self.last_day_block
            if not post and self.switch_block is not None:
                # a USDC.e market must be over (redeemed, withdrawn) before pUSD takes over
                sw_end = self.switch_block - 1
                hard_end = min(hard_end, sw_end)
                b_resolve = min(b_resolve, sw_end - REDEEM_TAIL - WITHDRAW_DELAY - 20)
                if b_resolve - b_create < 3_000:
                    continue  # too close to the collateral switch: this market is not listed
            ctf = prof.ctf[0].address
            exchange = exchanges[0] if rng.random() < 0.7 or len(exchanges) == 1 else exchanges[1]
            ps.append(MarketParams(
                mid=mid, day=c, weight=rng.lognormvariate(0, 0.8), b_create=b_create, b_resolve=b_resolve,
                hard_end=hard_end, winner=0 if rng.random() < 0.5 else 1, p0=rng.uniform(0.15, 0.85),
                condition_id=_h256(self.seed, "cond", mid), question_id=_h256(self.seed, "q", mid),
                tokens=(_h256(self.seed, "tok", mid, 0) >> 1, _h256(self.seed, "tok", mid, 1) >> 1),
                exchange=exchange, collateral=coll, ctf=ctf,
            ))
        self._params[c] = ps
        return ps

    def live_markets(self, d: int) -> Iterable[MarketParams]:
        for c in range(max(0, d - LOOKBACK_DAYS), d + 1):
            yield from self.market_params(c)

    def _weight_sum(self, d: int) -> float:
        ws = self._wsum.get(d)
        if ws is None:
            ws = sum(mp.weight * self._mass(mp, d) for mp in self.live_markets(d))
            self._wsum[d] = ws
        return ws

    def market_slots(self, mp: MarketParams, rng: random.Random, min_block: int) -> list[int]:
        """Trade slot blocks of a market: its share of each live day's slots, by hour weight."""
        out: list[int] = []
        last_day = min(self.days - 1, self.chain.day_of_block(min(mp.b_resolve - 1, mp.hard_end)) or 0)
        for d in range(mp.day, last_day + 1):
            mass = self._mass(mp, d)
            if mass <= 0:
                continue
            plan = self.day_plan(d)
            lam = plan["slots"] * mp.weight * mass / self._weight_sum(d)
            n = _poisson(rng, lam)
            if not n:
                continue
            lo = max(min_block, mp.b_create + 40)
            hi = min(mp.b_resolve - 1, mp.hard_end, plan["end"])
            edges, weights = plan["edges"], plan["weights"]
            hw = []
            for h in range(24):
                a, b = edges[h], edges[h + 1] - 1
                ov = min(b, hi) - max(a, lo) + 1
                hw.append(weights[h] * ov / (b - a + 1) if ov > 0 and b >= a else 0.0)
            if not any(hw):
                continue
            for h in rng.choices(range(24), hw, k=n):
                a, b = max(edges[h], lo), min(edges[h + 1] - 1, hi)
                out.append(a + rng.randrange(b - a + 1))
        out.sort()
        return out

    def market_result(self, mp: MarketParams) -> MarketResult:
        r = self._results.get(mp.mid)
        if r is None:
            r = MarketSim(self, mp).run()
            self._results[mp.mid] = r
            if len(self._results) > self._results_max:
                self._results.popitem(last=False)
        else:
            self._results.move_to_end(mp.mid)
        return r

    def all_markets(self) -> Iterable[MarketParams]:
        for c in range(self.days):
            yield from self.market_params(c)

    # -- days of logs --------------------------------------------------------------------------
    def day_logs(self, d: int) -> DayLogs:
        dl = self._day_cache.get(d)
        if dl is not None:
            self._day_cache.move_to_end(d)
            return dl
        dl = self._build_day(d)
        self._day_cache[d] = dl
        if len(self._day_cache) > self._day_cache_max:
            self._day_cache.popitem(last=False)
        return dl

    def _build_day(self, d: int) -> DayLogs:
        plan = self.day_plan(d)
        s, e = plan["start"], plan["end"]
        txs: list[tuple] = []
        for mp in self.live_markets(d):
            if mp.b_create > e or mp.last_block < s:
                continue
            res = self.market_result(mp)
            lo = bisect.bisect_left(res.tx_blocks, s)
            hi = bisect.bisect_right(res.tx_blocks, e)
            if lo == hi:
                continue
            g = (mp.mid * 2654435761) & 0xFFFFFFF
            for blk, seq, logs in res.txs[lo:hi]:
                txs.append((blk, g, seq, logs))
        txs.extend(noise_txs(self, d, s, e, plan["target"]))
        txs.sort(key=lambda t: (t[0], t[1], t[2]))
        dl = serialize_day(self, d, s, e, txs)
        self._release_results(d)
        return dl

    def _release_results(self, d: int) -> None:
        """Drop simulated markets whose every day is now built and cached (memory: their logs
        already live, serialised, in the day caches; a later eviction just re-simulates)."""
        cached = self._day_cache.keys() | {d}
        for mp in self.live_markets(d):
            if mp.mid not in self._results:
                continue
            last = self.chain.day_of_block(mp.last_block)
            last = self.days - 1 if last is None else last
            if all(x in cached for x in range(mp.day, last + 1)):
                del self._results[mp.mid]

    def _days_overlapping(self, from_block: int, to_block: int) -> range:
        lo = max(from_block, self.day_bounds(0)[0])
        hi = min(to_block, self.last_day_block)
        if lo > hi:
            return range(0)
        d0 = self.chain.day_of_block(lo)
        d1 = self.chain.day_of_block(hi)
        return range(d0, d1 + 1)

    def query(self, from_block: int, to_block: int, spec: FilterSpec | None = None) -> list[tuple[DayLogs, list[int]]]:
        """Matching logs as (day, positions) groups, in (block, logIndex) order."""
        out = []
        for d in self._days_overlapping(from_block, to_block):
            dl = self.day_logs(d)
            pos = dl.select(from_block, to_block, spec)
            if pos:
                out.append((dl, pos))
        return out

    def count(self, from_block: int, to_block: int, spec: FilterSpec | None = None) -> int:
        return sum(len(p) for _, p in self.query(from_block, to_block, spec))

    def logs_in(self, from_block: int, to_block: int, spec: FilterSpec | None = None) -> list[dict]:
        """Logs of [from_block, to_block] as JSON-RPC dicts, in (block, logIndex) order."""
        import orjson

        out: list[dict] = []
        for dl, pos in self.query(from_block, to_block, spec):
            raw = dl.raw
            out.extend(orjson.loads(raw[p]) for p in pos)
        return out

    def block_transactions(self, n: int) -> list[str]:
        d = self.chain.day_of_block(n)
        if d is None:
            return []
        return self.day_logs(d).block_txs.get(n, [])

    # -- ground truth --------------------------------------------------------------------------
    def truth_rows(self, table: str, scope: str = "polymarket") -> list[dict]:
        from .truth import truth_rows

        return truth_rows(self, table, scope)

    def export_truth(self, directory) -> dict:
        from .truth import export_truth

        return export_truth(self, directory)


def build_world(density: str = "demo", seed: int = 1, start_date: dt.date | None = None,
                days: int | None = None, **kw) -> World:
    """A world for `density` ('small' | 'demo' | 'full'); generation is lazy, per day."""
    if isinstance(start_date, str):
        start_date = dt.date.fromisoformat(start_date)
    return World(density=density, seed=seed, start_date=start_date, days=days, **kw)
