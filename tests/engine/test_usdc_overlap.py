"""A USDC transfer between two Polymarket contracts matches both the `from` and the `to` filter:
counted and stored once, and only such transfers are remembered for the day."""

from __future__ import annotations

import datetime as dt

from console.engine.shards import _drop_seen, _overlap
from console.protocol import DEFAULT_PROFILE

DAY = dt.date(2024, 11, 5)
OUTSIDER = "0x" + "ab" * 20


def columns(rows):
    return {"from_address": [r[0] for r in rows], "to_address": [r[1] for r in rows],
            "tx_hash": [r[2] for r in rows], "log_index": [r[3] for r in rows],
            "value": [r[4] for r in rows]}


def test_overlap_is_the_polymarket_contracts_on_both_sides():
    senders, receivers = _overlap(DEFAULT_PROFILE.streams(DAY, "polymarket"))
    contracts = {c.lower() for c in DEFAULT_PROFILE.known_contracts(DAY)}
    assert senders == receivers == contracts and OUTSIDER not in senders


def test_one_filter_cannot_repeat_a_transfer():
    assert _overlap(DEFAULT_PROFILE.streams(DAY, "all")) == (frozenset(), frozenset())


def test_a_transfer_in_both_streams_is_kept_once_and_only_it_is_remembered():
    both = _overlap(DEFAULT_PROFILE.streams(DAY, "polymarket"))
    a, b = sorted(both[0])[:2]
    inner = (a, b, "0x" + "11" * 32, 7, 5)
    from_stream = columns([inner, (a, OUTSIDER, "0x" + "22" * 32, 1, 6)])
    to_stream = columns([(OUTSIDER, b, "0x" + "33" * 32, 0, 8), inner])
    shared: set = set()
    first = _drop_seen(from_stream, shared, both)
    second = _drop_seen(to_stream, shared, both)
    assert first is from_stream  # nothing dropped: the same columns go on
    assert second["tx_hash"] == ["0x" + "33" * 32] and second["value"] == [8]
    assert shared == {("0x" + "11" * 32, 7)}
