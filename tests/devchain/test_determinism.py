"""Same seed -> identical world, whatever order days are generated in; other seed -> different."""

from __future__ import annotations

import datetime as dt

from console.devchain.world import build_world


def _fingerprint(world, order):
    out = {}
    for d in order:
        dl = world.day_logs(d)
        out[d] = (bytes(dl.kind), b"\n".join(dl.raw))
    return [out[d] for d in sorted(out)]


def test_same_seed_same_world():
    a = build_world("small", seed=11)
    b = build_world("small", seed=11, day_cache=1)  # evicts: days are rebuilt from scratch
    assert _fingerprint(a, [0, 1, 2]) == _fingerprint(b, [2, 0, 1])
    assert a.truth_rows("pnl") == b.truth_rows("pnl")
    assert a.head == b.head and a.day_bounds(1) == b.day_bounds(1)


def test_other_seed_other_world():
    a = build_world("small", seed=11)
    c = build_world("small", seed=12)
    assert _fingerprint(a, [0]) != _fingerprint(c, [0])


def test_full_world_is_lazy_and_day_local():
    """A far day of a `full` world is generated without the days before it."""
    w = build_world("full", seed=3)
    assert w.days == 1048 and w.start_date == dt.date(2023, 1, 1)
    dl = w.day_logs(700)
    assert len(w._day_cache) == 1
    from console.devchain.markets import K_CTF, K_REG, K_RES, K_USDC_PM

    relevant = sum(dl.kind.count(k) for k in (K_USDC_PM, K_CTF, K_RES, K_REG))
    assert 3_000 <= relevant <= 60_000


def test_pusd_era():
    """A window crossing 2026-04-28 switches to pUSD and the new exchanges, and nothing of the
    USDC.e markets spills past the switch."""
    from console.protocol import DEFAULT_PROFILE, POLYMARKET_SWITCH

    w = build_world("small", seed=5, start_date=POLYMARKET_SWITCH - dt.timedelta(days=2), days=4)
    usdce, pusd = DEFAULT_PROFILE.collateral[0].address, DEFAULT_PROFILE.collateral[1].address
    rows = w.truth_rows("erc20_transfers", "all")
    before = [r for r in rows if w.day_date(r["day_idx"]) < POLYMARKET_SWITCH]
    after = [r for r in rows if w.day_date(r["day_idx"]) >= POLYMARKET_SWITCH]
    assert before and after
    assert {r["token"] for r in before} == {usdce}
    assert {r["token"] for r in after} == {pusd}
    new_ex = {d.address for d in DEFAULT_PROFILE.exchanges if d.active_from == POLYMARKET_SWITCH}
    regs_after = [r for r in w.truth_rows("token_registrations") if w.day_date(r["day_idx"]) >= POLYMARKET_SWITCH]
    assert regs_after and {r["contract"] for r in regs_after} <= new_ex
