"""RateLimiter on a virtual clock: isolated 429s pause without cutting the rate, sustained rate
limiting cuts it (from what was sustained, never above the user's rps), Retry-After pauses every
acquirer. No real sleeping: ``sleep`` moves the clock."""

from __future__ import annotations

import asyncio

import pytest

from console.engine.rpc import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        # Sleepers started at the same virtual instant wake at their own deadlines; the clock
        # never goes backwards.
        self.t = max(self.t, self.t + max(0.0, s))
        await asyncio.sleep(0)


def limiter(rps, clock):
    return RateLimiter(rps, clock=clock, sleep=clock.sleep)


async def drive(lim: RateLimiter, clock: Clock, seconds: float, every: float, limited,
                retry_after: float | None = 1.0) -> int:
    """One request every ``every`` s for ``seconds``; ``limited(i)`` says whether request i is
    answered with a 429 (with ``retry_after``). Returns the number of requests."""
    i = 0
    end = clock.t + seconds
    while clock.t < end:
        await lim.acquire()
        if limited(i):
            lim.on_rate_limited(retry_after)
        else:
            lim.on_success()
        i += 1
        clock.t += every
    return i


@pytest.mark.parametrize("rps", [None, 20.0])
async def test_isolated_429s_pause_but_do_not_cut_the_rate(rps):
    clock = Clock()
    lim = limiter(rps, clock)
    # 5 % of the requests (every 20th), like the `hostile` profile's random 429s, for a minute
    n = await drive(lim, clock, 60.0, 0.05, lambda i: i % 20 == 19)
    assert lim.rate_limited == n // 20 > 30
    assert lim.decreases == 0
    assert lim.rate == rps  # unlimited stays unlimited; the user's cap stays the cap
    assert lim.paused_until > 0  # each one was honoured as a pause


async def test_sustained_rate_limiting_cuts_the_rate_from_what_was_sustained():
    clock = Clock()
    lim = limiter(None, clock)
    # 20 requests/s of which every other one is refused (no Retry-After, so no pause): a
    # provider capping us at ~10/s
    await drive(lim, clock, 1.0, 0.05, lambda i: i % 2 == 1, retry_after=None)
    assert lim.decreases == 1
    assert lim.rate is not None
    # cut from what it accepted (~10/s: 0.9 x that), not halved from what we tried, then a
    # little additive increase: near the provider's cap, well under the 20/s we tried
    assert 8.0 <= lim.rate <= 11.0


async def test_a_burst_of_429s_cuts_at_once():
    """The requests in flight all meeting an empty bucket: six 429s within half a second."""
    clock = Clock()
    lim = limiter(100.0, clock)
    for _ in range(200):  # 2 s at 100/s, all fine
        await lim.acquire()
        lim.on_success()
        clock.t += 0.01
    assert lim.rate == 100.0
    for k in range(6):
        assert lim.decreases == 0
        lim.on_rate_limited(None)
        clock.t += 0.05
    assert lim.decreases == 1 and lim.rate <= 90.0


async def test_429s_in_flight_after_a_cut_do_not_cut_again():
    clock = Clock()
    lim = limiter(None, clock)
    await drive(lim, clock, 1.0, 0.05, lambda i: i % 2 == 1, retry_after=None)
    cuts, rate = lim.decreases, lim.rate
    assert cuts == 1
    for _ in range(10):  # answers to requests sent at the old rate, within the cool-down
        lim.on_rate_limited(None)
        clock.t += 0.05
    assert (lim.decreases, lim.rate) == (cuts, rate)


async def test_cuts_never_exceed_the_users_rps_nor_go_below_the_floor():
    clock = Clock()
    lim = limiter(4.0, clock)
    await drive(lim, clock, 30.0, 0.01, lambda i: True)  # refused, always
    assert lim.decreases >= 1
    assert 0.2 <= lim.rate < 4.0
    for _ in range(10_000):
        lim.on_success()
        clock.t += 0.01
    assert lim.rate <= 4.0


async def test_retry_after_pauses_every_acquirer():
    clock = Clock()
    lim = limiter(None, clock)
    lim.on_rate_limited(2.0)  # one request got 429 + Retry-After: 2 at t=0
    started: list[float] = []

    async def one():
        started.append(await lim.acquire())

    await asyncio.gather(*(one() for _ in range(5)))
    assert len(started) == 5 and min(started) >= 2.0
    assert lim.decreases == 0 and lim.rate is None


async def test_retry_after_reaches_acquirers_already_queued_for_tokens():
    clock = Clock()
    lim = limiter(1.0, clock)
    await lim.acquire()  # the one token: the next acquirer queues for ~1 s

    async def queued():
        return await lim.acquire()

    task = asyncio.ensure_future(queued())
    await asyncio.sleep(0)  # it is now sleeping for its token
    lim.on_rate_limited(5.0)  # meanwhile a 429 asks everyone to wait 5 s
    assert await task >= 5.0
