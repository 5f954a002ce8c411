"""Density profiles: how busy each simulated day is and how activity spreads over its hours.

A profile gives, per day, a *target* number of relevant logs (logs the default Polymarket
streams select) and 24 hourly weights. The world turns the target into a number of trade
slots; markets then share those slots (see markets.py). Kept separate so the shape of a
dataset (quiet/busy days, the election-night spike) is readable in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

ELECTION_NIGHT = dt.date(2024, 11, 6)

# US-evening-heavy diurnal shape (UTC hours), mean 1.0
_DIURNAL = [
    1.15, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.55, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.1, 1.2, 1.3, 1.35, 1.4, 1.4, 1.35, 1.3, 1.25, 1.2,
]

# demo: relative busyness of the 14 days from 2024-10-28 (x 1000 relevant logs)
_DEMO_TARGETS = [6, 9, 12, 8, 7, 11, 14, 22, 34, 120, 20, 12, 8, 6]


def _u01(*parts: object) -> float:
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


@dataclass(frozen=True)
class Density:
    name: str
    default_start: dt.date
    default_days: int
    markets_per_day: int
    wallet_pool: int
    noise_ratio: float  # noise logs per relevant log

    def target(self, seed: int, day_idx: int, day: dt.date, days: int) -> int:
        if self.name == "small":
            return 1400 + int(600 * _u01(seed, "t", day_idx))
        if self.name == "demo":
            base = _DEMO_TARGETS[day_idx % len(_DEMO_TARGETS)] * 1000
            if self.is_spike_day(day, day_idx, days):
                base = max(base, 120_000)
            elif base >= 120_000:
                base = 20_000
            return int(base * (0.9 + 0.2 * _u01(seed, "t", day_idx)))
        # full: log-uniform in [5k, 50k] with a weekly rhythm and a slow growth trend
        u = _u01(seed, "t", day_idx)
        weekly = 0.85 if day.weekday() >= 5 else 1.05
        trend = 0.7 + 0.6 * day_idx / max(1, days - 1)
        v = math.exp(math.log(5_000) + u * (math.log(50_000) - math.log(5_000))) * weekly * trend
        return int(min(50_000, max(5_000, v)))

    def is_spike_day(self, day: dt.date, day_idx: int, days: int) -> bool:
        if self.name != "demo":
            return False
        return day == ELECTION_NIGHT or (
            not (0 <= (ELECTION_NIGHT - (day - dt.timedelta(days=day_idx))).days < days)
            and day_idx == (2 * days) // 3
        )

    def hour_weights(self, seed: int, day_idx: int, day: dt.date, days: int) -> list[float]:
        w = [x * (0.85 + 0.3 * _u01(seed, "h", day_idx, h)) for h, x in enumerate(_DIURNAL)]
        if self.is_spike_day(day, day_idx, days):
            # election night: results come in 01:00-07:00 UTC; ~80 % of the day's activity, with
            # a peak hour where even one stream exceeds a 10K-log cap within 2,000 blocks
            spike = [0, 2, 5, 10, 14, 9, 4, 1]  # hours 0..7
            base = sum(w)
            for h, s in enumerate(spike):
                w[h] += base * s / 45 * 3
        total = sum(w)
        return [x / total for x in w]


DENSITIES = {
    "small": Density("small", dt.date(2024, 10, 28), 3, 6, 600, 0.35),
    "demo": Density("demo", dt.date(2024, 10, 28), 14, 28, 12_000, 0.3),
    "full": Density("full", dt.date(2023, 1, 1), 1048, 40, 250_000, 0.3),
}
