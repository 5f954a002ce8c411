"""Every fault profile: exact provider codes and texts, suggested ranges that really work,
and scheduled faults that a retry always gets past."""

from __future__ import annotations

import argparse
import http.client
import json
import re

import pytest

from console.devchain.faults import PROFILES
from console.devchain.index import FilterSpec
from console.protocol import TOPIC_TOKEN_REGISTERED

ALCHEMY = re.compile(
    r"^Log response size exceeded\. You can make eth_getLogs requests with up to a 2K block range and no limit on "
    r"the response size, or you can request any block range with a cap of 10K logs in the response\. Based on your "
    r"parameters and the response size limit, this block range should work: \[(0x[0-9a-f]+), (0x[0-9a-f]+)\]$")
ALCHEMY500 = re.compile(
    r"^You can make eth_getLogs requests with up to a 500 block range\. Based on your parameters, this block range "
    r"should work: \[(0x[0-9a-f]+), (0x[0-9a-f]+)\]$")
INFURA = re.compile(r"^query returned more than 10000 results\. Try with this block range \[(0x[0-9a-f]+), (0x[0-9a-f]+)\]\.$")
ERIGON = re.compile(r"^query exceeds max results 20000, retry with the range (\d+)-(\d+)$")


@pytest.fixture(scope="module")
def busy(demo_world):
    """A no-filter range of the demo world with well over 20,000 logs (days 0-1)."""
    s, _ = demo_world.day_bounds(0)
    _, e = demo_world.day_bounds(2)
    assert demo_world.count(s, e) > 30_000
    return s, e


def _getlogs(srv, frm, to, **extra):
    return srv.call("eth_getLogs", [{"fromBlock": hex(frm), "toBlock": hex(to), **extra}])


def _check_cap_hint(world, srv, frm, hi, cap):
    """The suggested range works, holds <= cap logs and is maximal."""
    status, resp = _getlogs(srv, frm, hi)
    assert status == 200 and "result" in resp, resp
    assert 0 < len(resp["result"]) <= cap
    assert world.count(frm, hi + 1) > cap, "the hint should be the widest range that fits"


def test_alchemy(demo_world, busy, serve):
    srv = serve(demo_world, "alchemy")
    s, e = busy
    status, resp = _getlogs(srv, s, e)
    assert status == 200
    err = resp["error"]
    assert err["code"] == -32602
    m = ALCHEMY.match(err["message"])
    assert m, err["message"]
    assert int(m.group(1), 16) == s
    _check_cap_hint(demo_world, srv, s, int(m.group(2), 16), 10_000)
    # at or under the cap: fine, whatever the range
    ok_to = int(m.group(2), 16)
    assert len(_getlogs(srv, s, ok_to)[1]["result"]) == demo_world.count(s, ok_to)


def test_alchemy500(demo_world, serve):
    srv = serve(demo_world, "alchemy500")
    s, _ = demo_world.day_bounds(1)
    status, resp = _getlogs(srv, s, s + 500)
    assert status == 400
    assert resp["error"]["code"] == -32600
    m = ALCHEMY500.match(resp["error"]["message"])
    assert m, resp["error"]["message"]
    a, b = int(m.group(1), 16), int(m.group(2), 16)
    assert (a, b) == (s, s + 499)
    status, resp = _getlogs(srv, a, b)
    assert status == 200 and len(resp["result"]) == demo_world.count(a, b) > 0


def test_infura(demo_world, serve):
    srv = serve(demo_world, "infura")
    sp, ep = demo_world.day_bounds(9)  # election night: 10,000 blocks with over 10,000 results
    s = next(b for b in range(sp, ep, 1000) if demo_world.count(b, b + 9_999) > 10_000)
    e = s + 9_999
    status, resp = _getlogs(srv, s, e)
    err = resp["error"]
    assert err["code"] == -32005
    m = INFURA.match(err["message"])
    assert m, err["message"]
    assert err["data"] == {"from": m.group(1), "to": m.group(2), "limit": 10000}
    _check_cap_hint(demo_world, srv, int(m.group(1), 16), int(m.group(2), 16), 10_000)
    reg = {"address": demo_world.profile.exchanges[0].address, "topics": [TOPIC_TOKEN_REGISTERED]}
    status, resp = _getlogs(srv, s, s + 10_000, **reg)
    assert resp["error"] == {"code": -32602, "message": "range 10001 exceeds limit of 10000"}
    assert "result" in _getlogs(srv, s, s + 9_999, **reg)[1]


def test_quicknode_range(demo_world, serve):
    srv = serve(demo_world, "quicknode", p_rpc_rate=0.0)
    s, _ = demo_world.day_bounds(0)
    status, resp = _getlogs(srv, s, s + 10_000, address=demo_world.profile.ctf[0].address)
    assert status == 413
    assert resp["error"] == {"code": -32614, "message": "eth_getLogs is limited to a 10,000 range"}
    status, resp = _getlogs(srv, s, s + 9_999, address=demo_world.profile.ctf[0].address)
    assert status == 200 and resp["result"]


@pytest.mark.parametrize("profile, code, text", [
    ("clean", -32614, "eth_getLogs is limited to a 4,000 range"),
    ("polygon", -32000, "eth_getLogs block range too large, range: 4001, max: 4000"),
])
def test_range_cap_option_states_its_own_cap(small_world, serve, profile, code, text):
    """`--range-cap` keeps the profile's error style (QuickNode's on a profile without one), and
    the message states the cap that was set, as the engine reads the limit from it."""
    from console.devchain.cli import range_cap_overrides

    overrides = range_cap_overrides(argparse.Namespace(profile=profile, range_cap=4_000))
    srv = serve(small_world, profile, **overrides)
    s, _ = small_world.day_bounds(0)
    ctf = small_world.profile.ctf[0].address
    assert _getlogs(srv, s, s + 4_000, address=ctf)[1]["error"] == {"code": code, "message": text}
    assert "result" in _getlogs(srv, s, s + 3_999, address=ctf)[1]


def test_ankr(demo_world, busy, serve):
    srv = serve(demo_world, "ankr")
    s, _ = busy
    ctf = demo_world.profile.ctf[0].address
    _, resp = _getlogs(srv, s, s + 3_000, address=ctf)
    assert resp["error"] == {"code": -32600, "message": "block range is too wide"}
    assert "result" in _getlogs(srv, s, s + 2_999, address=ctf)[1]
    # a dense 3,000-block window: find one over 10,000 logs in the demo spike
    sp, ep = demo_world.day_bounds(9)
    frm = next(b for b in range(sp, ep, 500) if demo_world.count(b, b + 2_999) > 10_000)
    _, resp = _getlogs(srv, frm, frm + 2_999)
    assert resp["error"] == {"code": -32600, "message": "query exceeds max results"}


def test_erigon(demo_world, busy, serve):
    srv = serve(demo_world, "erigon")
    s, e = busy
    _, resp = _getlogs(srv, s, e)
    err = resp["error"]
    assert err["code"] == -32602
    m = ERIGON.match(err["message"])
    assert m, err["message"]
    a, b = int(m.group(1)), int(m.group(2))
    assert a == s
    _check_cap_hint(demo_world, srv, a, b, 20_000)


def test_polygon(demo_world, serve):
    srv = serve(demo_world, "polygon")
    s, _ = demo_world.day_bounds(0)
    _, resp = _getlogs(srv, s, s + 3_500)
    assert resp["error"]["message"] == "eth_getLogs block range too large, range: 3501, max: 3500"
    assert "result" in _getlogs(srv, s, s + 3_499)[1]


def test_election_spike_exceeds_cap_in_2000_blocks(demo_world):
    """Election night: a 2,000-block window with well over 10,000 relevant logs, and even one
    stream alone over the 10K cap (so a capped provider forces splits)."""
    sp, ep = demo_world.day_bounds(9)
    assert demo_world.day_date(9).isoformat() == "2024-11-06"
    from console.protocol import DEFAULT_PROFILE

    specs = [FilterSpec.from_params(**st.filter_params()) for st in DEFAULT_PROFILE.streams(demo_world.day_date(9))]
    best_total = best_single = 0
    for b in range(sp, ep - 2000, 500):
        counts = [demo_world.count(b, b + 1999, sp_) for sp_ in specs]
        best_total = max(best_total, sum(counts))
        best_single = max(best_single, max(counts))
    assert best_total > 20_000, best_total
    assert best_single > 10_000, best_single


# -- scheduled faults ---------------------------------------------------------------------------

def _probe(srv, n):
    """The n-th distinct request (distinct params, so the never-twice rule does not hide faults)."""
    return {"jsonrpc": "2.0", "id": n, "method": "eth_getBlockByNumber", "params": [hex(1000 + n), False]}


def _classify(srv, payload):
    try:
        status, headers, body = srv.post(payload, timeout=10)
    except (http.client.RemoteDisconnected, ConnectionResetError, http.client.IncompleteRead):
        return "dropped", None, None
    try:
        doc = json.loads(body)
    except ValueError:
        if status in (502, 503, 504):
            return f"http_{status}", headers, body
        return "truncated", headers, body
    if status == 429:
        return "http_429", headers, doc
    if "error" in doc:
        return f"rpc_{doc['error']['code']}", headers, doc
    return "ok", headers, doc


def _run_until(srv, wanted, limit=4000):
    seen = {}
    for n in range(limit):
        p = _probe(srv, n)
        kind, headers, doc = _classify(srv, p)
        if kind != "ok":
            seen.setdefault(kind, (headers, doc))
            again, _, _ = _classify(srv, p)
            assert again == "ok", f"a retry after {kind} must succeed, got {again}"
        if wanted <= set(seen):
            return seen
    raise AssertionError(f"never saw {wanted - set(seen)}; saw {set(seen)}")


def test_ratelimit(small_world, serve):
    srv = serve(small_world, "ratelimit")
    seen = _run_until(srv, {"http_429", "rpc_-32005"})
    headers, _ = seen["http_429"]
    assert float(headers["Retry-After"]) > 0
    _, doc = seen["rpc_-32005"]
    assert doc["error"]["message"] == "daily request count exceeded, request rate limited"
    assert doc["error"]["data"]["rate"]["backoff_seconds"] > 0


def test_token_bucket(small_world, serve):
    srv = serve(small_world, "clean", bucket_rps=0.001, bucket_burst=3)
    kinds = [_classify(srv, _probe(srv, n))[0] for n in range(4)]
    assert kinds == ["ok", "ok", "ok", "http_429"]


def test_quicknode_rate(small_world, serve):
    srv = serve(small_world, "quicknode")
    seen = _run_until(srv, {"http_429"})
    _, doc = seen["http_429"]
    assert doc["error"] == {"code": -32007, "message": "100/second request limit reached - reduce calls per second "
                                                        "or upgrade your account at quicknode.com"}


def test_flaky(small_world, serve):
    srv = serve(small_world, "flaky", slow_seconds=0.05)
    seen = _run_until(srv, {"http_502", "http_503", "http_504", "dropped", "truncated", "rpc_-32000"})
    assert seen["rpc_-32000"][1]["error"]["message"] == "header not found"
    stats = json.loads(srv.get("/stats")[1])
    assert {"dropped", "truncated", "header_not_found"} <= set(stats["errors_by_class"])


def test_flaky_slow_response(small_world, serve):
    import time

    srv = serve(small_world, "clean", p_slow=1.0, slow_seconds=0.3)
    t = time.monotonic()
    kind, _, _ = _classify(srv, _probe(srv, 1))
    assert kind == "ok" and time.monotonic() - t >= 0.3
    t = time.monotonic()
    try:
        srv.post(_probe(srv, 2), timeout=0.1)
        raise AssertionError("should have timed out")
    except TimeoutError:
        pass
    assert time.monotonic() - t < 0.3


def test_hostile_and_demo(demo_world, small_world, busy, serve):
    for name, world, wanted in (("hostile", small_world, {"http_429", "rpc_-32005", "dropped", "truncated"}),
                                ("demo", small_world, {"http_429"})):
        srv = serve(world, name, slow_seconds=0.05)
        _run_until(srv, wanted)
    srv = serve(demo_world, "demo")
    s, e = busy
    for n in range(50):  # the cap is a limit, not a fault: retries of the same request get it again
        kind, _, doc = _classify(srv, {"jsonrpc": "2.0", "id": n, "method": "eth_getLogs",
                                        "params": [{"fromBlock": hex(s), "toBlock": hex(e)}]})
        if kind == "rpc_-32602":
            assert ALCHEMY.match(doc["error"]["message"])
            break
    else:
        raise AssertionError("demo never returned the alchemy cap error")


def test_demo_profile_has_5xx(small_world, serve):
    srv = serve(small_world, "demo")
    seen = {}
    for n in range(3000):
        kind, _, _ = _classify(srv, _probe(srv, n))
        seen[kind] = seen.get(kind, 0) + 1
        if any(k.startswith("http_5") for k in seen) and "http_429" in seen:
            break
    assert "http_429" in seen and any(k.startswith("http_5") for k in seen), seen
    assert seen["ok"] > 0.9 * sum(seen.values())


def test_every_profile_is_listed():
    assert set(PROFILES) == {"clean", "demo", "alchemy", "alchemy500", "infura", "quicknode", "ankr", "erigon",
                             "polygon", "ratelimit", "flaky", "hostile"}
    h = PROFILES["hostile"]
    assert h.cap == 10_000 and h.cap_style == "alchemy" and h.p_http_429 and h.p_5xx and h.p_drop


def test_hang_hook(small_world, serve):
    s, e = small_world.day_bounds(0)
    srv = serve(small_world, "clean", hang_blocks=(s + 100, s + 200), hang_seconds=30, hang_count=1)
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"fromBlock": hex(s), "toBlock": hex(s + 150)}]}
    try:
        srv.post(body, timeout=0.3)
        raise AssertionError("the request should hang")
    except TimeoutError:
        pass
    # outside the hang range: fine; and hang_count=1 means the retry is served
    assert "result" in srv.call("eth_getLogs", [{"fromBlock": hex(s + 300), "toBlock": hex(s + 400)}])[1]
    status, _, out = srv.post(body, timeout=5)
    assert status == 200 and "result" in json.loads(out)
    assert json.loads(srv.get("/stats")[1])["hangs"] == 1
