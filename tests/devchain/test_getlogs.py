"""eth_getLogs semantics against a brute-force filter over the whole world (through HTTP)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.protocol import DEFAULT_PROFILE


def oracle(logs, frm, to, address, topics):
    """Independent geth-style filter: OR within a position, null/[] wildcard, length rule."""
    if address is None:
        addrs = None
    elif isinstance(address, str):
        addrs = {address.lower()}
    else:
        addrs = {a.lower() for a in address}
    out = []
    for log in logs:
        bn = int(log["blockNumber"], 16)
        if bn < frm or bn > to:
            continue
        if addrs is not None and log["address"] not in addrs:
            continue
        lt = log["topics"]
        if topics is not None:
            if len(topics) > len(lt):
                continue
            ok = True
            for want, have in zip(topics, lt):
                if want is None or want == []:
                    continue
                if isinstance(want, str):
                    if want.lower() != have:
                        ok = False
                        break
                elif have not in {w.lower() for w in want}:
                    ok = False
                    break
            if not ok:
                continue
        out.append(log)
    return out


@pytest.fixture(scope="module")
def all_logs(small_world):
    logs = small_world.logs_in(0, small_world.head)
    assert len(logs) > 3000
    return logs


def _pools(logs):
    addrs = sorted({l["address"] for l in logs})
    t0 = sorted({l["topics"][0] for l in logs if l["topics"]})
    t12 = sorted({t for l in logs for t in l["topics"][1:3]})
    return addrs, t0, t12


def _mixed_case(a: str, flip: bool) -> str:
    if not flip:
        return a
    return "0x" + "".join(c.upper() if i % 2 else c for i, c in enumerate(a[2:]))


@st.composite
def filters(draw, pools, head):
    addrs, t0, t12 = pools
    frm = draw(st.integers(0, head))
    to = draw(st.integers(frm, min(head, frm + draw(st.sampled_from([10, 500, 5000, 50_000, 200_000])))))
    kind = draw(st.sampled_from(["none", "one", "list"]))
    flip = draw(st.booleans())
    extra = "0x" + "ab" * 20
    if kind == "none":
        address = None
    elif kind == "one":
        address = _mixed_case(draw(st.sampled_from(addrs + [extra])), flip)
    else:
        address = [_mixed_case(a, flip) for a in draw(st.lists(st.sampled_from(addrs + [extra]), min_size=1, max_size=4))]

    def position(pool):
        return st.one_of(
            st.none(),
            st.just([]),
            st.sampled_from(pool),
            st.lists(st.sampled_from(pool), min_size=1, max_size=3),
        )

    n = draw(st.integers(0, 4))
    topics = [draw(position(t0 if i == 0 else t12)) for i in range(n)] if n or draw(st.booleans()) else None
    return frm, to, address, topics


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_random_filters_match_brute_force(small_world, small_server, all_logs, data):
    frm, to, address, topics = data.draw(filters(_pools(all_logs), small_world.head))
    f = {"fromBlock": hex(frm), "toBlock": hex(to)}
    if address is not None:
        f["address"] = address
    if topics is not None:
        f["topics"] = topics
    status, resp = small_server.call("eth_getLogs", [f])
    assert status == 200, resp
    got = resp["result"]
    want = oracle(all_logs, frm, to, address, topics)
    assert got == want


def test_streams_select_polymarket_logs_only(small_world, small_server, all_logs):
    """Each default stream over a day returns exactly what the oracle returns for its filter."""
    seen = {}
    for d in range(small_world.days):
        s, e = small_world.day_bounds(d)
        for stream in DEFAULT_PROFILE.streams(small_world.day_date(d), "all") + DEFAULT_PROFILE.streams(
                small_world.day_date(d), "polymarket"):
            fp = stream.filter_params()
            status, resp = small_server.call("eth_getLogs", [{"fromBlock": hex(s), "toBlock": hex(e), **fp}])
            assert status == 200
            want = oracle(all_logs, s, e, fp["address"], fp["topics"])
            assert resp["result"] == want
            seen[stream.name] = seen.get(stream.name, 0) + len(want)
    assert all(seen.values()), f"every stream must have logs in the small world: {seen}"


def test_order_and_log_fields(small_world, all_logs):
    keys = [(int(l["blockNumber"], 16), int(l["logIndex"], 16)) for l in all_logs]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    per_block = {}
    for l in all_logs:
        b = int(l["blockNumber"], 16)
        per_block.setdefault(b, []).append(int(l["logIndex"], 16))
        assert l["blockHash"] == small_world.block_hash(b)
        assert l["address"] == l["address"].lower() and len(l["address"]) == 42
        assert l["removed"] is False
        assert all(len(t) == 66 and t == t.lower() for t in l["topics"])
    for b, idx in per_block.items():
        assert idx == list(range(len(idx))), "logIndex is per block, from 0"


def test_block_hash_filter_and_tags(small_world, small_server, all_logs):
    b = int(all_logs[len(all_logs) // 2]["blockNumber"], 16)
    status, resp = small_server.call("eth_getLogs", [{"blockHash": small_world.block_hash(b)}])
    assert resp["result"] == oracle(all_logs, b, b, None, None) and resp["result"]
    _, resp = small_server.call("eth_getLogs", [{"blockHash": "0x" + "12" * 32}])
    assert resp["error"]["code"] == -32000
    _, resp = small_server.call("eth_getLogs", [{"blockHash": small_world.block_hash(b), "fromBlock": "0x1"}])
    assert resp["error"]["code"] == -32602
    _, resp = small_server.call("eth_getLogs", [{"fromBlock": "earliest", "toBlock": "latest",
                                                  "address": DEFAULT_PROFILE.ctf[0].address}])
    assert resp["result"] == oracle(all_logs, 0, small_world.head, DEFAULT_PROFILE.ctf[0].address, None)
    _, resp = small_server.call("eth_getLogs", [{"fromBlock": "0x10", "toBlock": "0x5"}])
    assert resp["error"]["code"] == -32602
    _, resp = small_server.call("eth_getLogs", [{}])  # latest..latest: the tail has no logs
    assert resp["result"] == []


def test_blocks(small_world, small_server, all_logs):
    _, r = small_server.call("eth_blockNumber")
    assert int(r["result"], 16) == small_world.head
    _, r = small_server.call("eth_chainId")
    assert r["result"] == "0x89"
    _, r = small_server.call("net_version")
    assert r["result"] == "137"
    log = all_logs[100]
    n = int(log["blockNumber"], 16)
    _, r = small_server.call("eth_getBlockByNumber", [hex(n), False])
    blk = r["result"]
    assert int(blk["number"], 16) == n
    assert blk["hash"] == small_world.block_hash(n) and blk["parentHash"] == small_world.block_hash(n - 1)
    assert int(blk["timestamp"], 16) == small_world.block_timestamp(n)
    assert log["transactionHash"] in blk["transactions"]
    assert blk["transactions"][int(log["transactionIndex"], 16)] == log["transactionHash"]
    for tag, expect in (("latest", small_world.head), ("earliest", 0), ("finalized", small_world.head - 200)):
        _, r = small_server.call("eth_getBlockByNumber", [tag, False])
        assert int(r["result"]["number"], 16) == expect
    _, r = small_server.call("eth_getBlockByNumber", [hex(small_world.head + 1), False])
    assert r["result"] is None
    assert small_world.head - 200 >= small_world.last_day_block + 800


def test_unknown_method_and_parse_error(small_server):
    _, r = small_server.call("eth_sendRawTransaction", ["0x00"])
    assert r["error"]["code"] == -32601
    status, _h, body = small_server.post(b"{not json")
    assert json.loads(body)["error"]["code"] == -32700
