"""Error classification: every provider text of issue 3 / DESIGN §6.3, table-driven."""

from __future__ import annotations

import pytest

from console.engine.errors import (
    DayNotFinal,
    Fatal,
    InvalidResponse,
    RateLimited,
    RpcError,
    RpcUnavailable,
    TooLarge,
    Transient,
    classify,
    parse_retry_after,
)

ALCHEMY = (
    "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and "
    "no limit on the response size, or you can request any block range with a cap of 10K logs in "
    "the response. Based on your parameters and the response size limit, this block range should "
    "work: [0x3a2f4c0, 0x3a2f9b1]"
)
ALCHEMY500 = (
    "You can make eth_getLogs requests with up to a 500 block range. Based on your parameters, "
    "this block range should work: [0x3a2f4c0, 0x3a2f6b3]"
)
INFURA_RESULTS = "query returned more than 10000 results. Try with this block range [0x3A2F4C0, 0x3A2F7D2]."
INFURA_DAILY = "daily request count exceeded, request rate limited"
QUICKNODE_RATE = "100/second request limit reached - reduce calls per second or upgrade your account at quicknode.com"

# (id, http_status, error, text, headers, expected class, expected attributes)
CASES = [
    # ---- too large, with a suggested range
    ("alchemy", 200, {"code": -32602, "message": ALCHEMY}, None, None, TooLarge,
     {"suggested": (0x3A2F4C0, 0x3A2F9B1), "max_results": 10_000, "max_range": None, "kind": "results"}),
    ("alchemy500", 400, {"code": -32600, "message": ALCHEMY500}, None, None, TooLarge,
     {"suggested": (0x3A2F4C0, 0x3A2F6B3), "max_range": 500, "kind": "range"}),
    ("infura-results", 200,
     {"code": -32005, "message": INFURA_RESULTS, "data": {"from": "0x3A2F4C0", "to": "0x3A2F7D2", "limit": 10000}},
     None, None, TooLarge, {"suggested": (0x3A2F4C0, 0x3A2F7D2), "max_results": 10_000, "kind": "results"}),
    ("infura-results-nodata", 200, {"code": -32005, "message": INFURA_RESULTS}, None, None, TooLarge,
     {"suggested": (0x3A2F4C0, 0x3A2F7D2), "max_results": 10_000}),
    ("erigon", 200, {"code": -32602, "message": "query exceeds max results 20000, retry with the range 61000000-61000842"},
     None, None, TooLarge, {"suggested": (61_000_000, 61_000_842), "max_results": 20_000, "kind": "results"}),
    # ---- too large, with a stated max range
    ("infura-range", 200, {"code": -32602, "message": "range 43200 exceeds limit of 10000"}, None, None, TooLarge,
     {"suggested": None, "max_range": 10_000, "kind": "range"}),
    ("quicknode-range", 200, {"code": -32614, "message": "eth_getLogs is limited to a 10,000 range"}, None, None,
     TooLarge, {"max_range": 10_000, "kind": "range", "suggested": None}),
    ("polygon", 200, {"code": -32000, "message": "eth_getLogs block range too large, range: 43200, max: 3500"},
     None, None, TooLarge, {"max_range": 3500, "kind": "range"}),
    # ---- too large, no hint
    ("ankr-range", 200, {"code": -32600, "message": "block range is too wide"}, None, None, TooLarge,
     {"max_range": None, "max_results": None, "suggested": None, "kind": "range"}),
    ("ankr-results", 200, {"code": -32600, "message": "query exceeds max results"}, None, None, TooLarge,
     {"max_range": None, "max_results": None, "suggested": None, "kind": "results"}),
    # ---- rate limited
    ("http429-retry-after", 429, None, "Too Many Requests", {"Retry-After": "3"}, RateLimited, {"retry_after": 3.0}),
    ("http429-json", 429, {"code": 429, "message": "Your app has exceeded its compute units per second capacity."},
     None, {"retry-after": "1.5"}, RateLimited, {"retry_after": 1.5}),
    ("http429-bare", 429, None, None, None, RateLimited, {"retry_after": None}),
    ("infura-daily", 200,
     {"code": -32005, "message": INFURA_DAILY, "data": {"see": "https://infura.io/dashboard", "rate": {"allowed_rps": 1, "backoff_seconds": 30, "current_rps": 1.4}}},
     None, None, RateLimited, {"retry_after": 30.0}),
    ("infura-daily-no-data", 200, {"code": -32005, "message": INFURA_DAILY}, None, None, RateLimited, {"retry_after": None}),
    ("quicknode-rate", 200, {"code": -32007, "message": QUICKNODE_RATE}, None, None, RateLimited, {}),
    ("code-32016", 200, {"code": -32016, "message": "over limit"}, None, None, RateLimited, {}),
    ("rate-limit-text", 200, {"code": -32000, "message": "rate limit exceeded"}, None, None, RateLimited, {}),
    ("rate-limit-plain-body", 503, None, "rate limited, retry in 2s", None, RateLimited, {"retry_after": 2.0}),
    # ---- transient
    ("http502", 502, None, "<html>Bad Gateway</html>", None, Transient, {}),
    ("http503", 503, None, None, None, Transient, {}),
    ("http504", 504, None, "Gateway Timeout", None, Transient, {}),
    ("http500-json", 500, {"code": -32603, "message": "internal error"}, None, None, Transient, {}),
    ("header-not-found", 200, {"code": -32000, "message": "header not found"}, None, None, Transient, {}),
    ("timeout", None, None, "request timed out after 30s", None, Transient, {}),
    ("conn-reset", None, None, "ClientOSError: [Errno 104] Connection reset by peer", None, Transient, {}),
    ("server-disconnected", None, None, "ServerDisconnectedError: Server disconnected", None, Transient, {}),
    ("truncated", 200, None, "truncated or malformed JSON body (8192 bytes)", None, Transient, {}),
    ("garbage-200", 200, None, "<html>oops</html>", None, Transient, {}),
    ("unknown-server-error", 200, {"code": -32099, "message": "something odd"}, None, None, Transient, {}),
    # ---- fatal
    ("method-not-found", 200, {"code": -32601, "message": "the method eth_getLogs does not exist/is not available"},
     None, None, Fatal, {}),
    ("http401", 401, None, "Unauthorized", None, Fatal, {}),
    ("http403", 403, {"code": -32002, "message": "rejected due to project ID settings"}, None, None, Fatal, {}),
    ("invalid-key", 200, {"code": -32000, "message": "Must be authenticated!"}, None, None, Fatal, {}),
    ("invalid-params", 200, {"code": -32602, "message": "invalid argument 0: hex string has leading zero digits after 0x"},
     None, None, Fatal, {}),
    ("http400-other", 400, None, "bad request", None, Fatal, {}),
]


@pytest.mark.parametrize(
    "status,error,text,headers,cls,attrs",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_classify_table(status, error, text, headers, cls, attrs):
    e = classify(status, error, text, headers)
    assert type(e) is cls, (e, e and e.message)
    assert e.klass == {TooLarge: "too_large", RateLimited: "rate_limited", Transient: "transient", Fatal: "fatal"}[cls]
    for k, v in attrs.items():
        assert getattr(e, k) == v, (k, getattr(e, k), v)
    assert e.message  # never empty


def test_no_error_is_none():
    assert classify(200, None, None) is None
    assert classify(204, None, None, {}) is None


def test_infura_32005_split_only_when_more_than_n_results():
    assert isinstance(classify(200, {"code": -32005, "message": INFURA_RESULTS}, None), TooLarge)
    assert isinstance(classify(200, {"code": -32005, "message": INFURA_DAILY}, None), RateLimited)
    assert isinstance(classify(200, {"code": -32005, "message": "limit exceeded"}, None), RateLimited)


def test_alchemy_2k_alternative_is_not_a_range_limit():
    e = classify(200, {"code": -32602, "message": ALCHEMY}, None)
    assert e.max_range is None and e.max_results == 10_000


def test_messages_never_carry_urls():
    e = classify(None, None, "ClientConnectorError: Cannot connect to https://polygon-mainnet.g.alchemy.com/v2/SECRETKEY123 [x]")
    assert "SECRETKEY123" not in e.message and "SECRETKEY123" not in str(e) and "SECRETKEY123" not in repr(e)
    e = classify(200, {"code": -32005, "message": INFURA_DAILY, "data": "see https://mainnet.infura.io/v3/abcdef0123456789"}, None)
    assert "abcdef0123456789" not in e.message


def test_long_messages_are_bounded():
    e = classify(200, {"code": -32000, "message": "header not found " * 100}, None)
    assert len(e.message) <= 500


def test_retry_after_forms():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    e = classify(429, None, None, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(e, RateLimited) and e.retry_after == 0.0


def test_hierarchy():
    assert issubclass(InvalidResponse, Transient) and InvalidResponse("x").klass == "transient"
    assert RpcUnavailable("x").klass == "transient" and not issubclass(RpcUnavailable, Transient)
    for c in (TooLarge, RateLimited, Transient, Fatal, RpcUnavailable):
        assert issubclass(c, RpcError)
    t = TooLarge("m", (1, 2), 3, 4)
    assert (t.suggested, t.max_range, t.max_results) == ((1, 2), 3, 4)
    assert RateLimited("m", 1.5).retry_after == 1.5


def test_day_not_final_message():
    import datetime as dt

    e = DayNotFinal(dt.date(2024, 11, 5), 64_000_000, 64_000_100, 200)
    s = str(e)
    assert "2024-11-05" in s and "64000000" in s and "64000100" in s and "200" in s
    e = DayNotFinal(dt.date(2024, 11, 5), None, 64_000_100)
    assert "not ended" in str(e)
