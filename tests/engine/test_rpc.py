"""RpcClient against a small scripted aiohttp server on 127.0.0.1:0 (stopped in teardown).

Backoff sleeps are recorded by an injected ``sleep`` that does not wait, so the tests check what
the client *decided* (Retry-After honoured, rate lowered, retries counted) without timing.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from console.engine.errors import Fatal, RateLimited, RpcUnavailable, TooLarge
from console.engine.rpc import RateLimiter, RpcClient

SECRET = "SECRETKEY0123456789"


class Script:
    """Per-request behaviour: a list of callables (request_json) -> web.Response, used in order;
    when exhausted, ``default`` answers."""

    def __init__(self):
        self.steps: list = []
        self.requests: list = []
        self.default = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert request.path == f"/v2/{SECRET}"
        body = orjson.loads(await request.read())
        self.requests.append(body)
        step = self.steps.pop(0) if self.steps else self.default
        r = step(body)
        if asyncio.iscoroutine(r):
            r = await r
        return r


def ok(result):
    return lambda body: web.Response(
        body=orjson.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result}), content_type="application/json"
    )


def rpc_error(code, message, status=200, data=None, headers=None):
    def f(body):
        err = {"code": code, "message": message}
        if data is not None:
            err["data"] = data
        return web.Response(
            status=status,
            body=orjson.dumps({"jsonrpc": "2.0", "id": body.get("id") if isinstance(body, dict) else None, "error": err}),
            content_type="application/json",
            headers=headers,
        )

    return f


def http(status, text="", headers=None):
    return lambda body: web.Response(status=status, text=text, headers=headers)


@pytest.fixture
async def server():
    script = Script()
    app = web.Application()
    app.router.add_post("/v2/{key}", script.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    script.url = f"http://127.0.0.1:{port}/v2/{SECRET}"
    try:
        yield script
    finally:
        await runner.cleanup()


class Sleeps:
    def __init__(self):
        self.calls: list[float] = []

    async def __call__(self, s):
        self.calls.append(s)
        await asyncio.sleep(0)


def client(url, sleeps=None, **kw):
    kw.setdefault("backoff_initial", 0.01)
    return RpcClient(url, sleep=sleeps or Sleeps(), **kw)


async def test_basic_calls_and_stats(server):
    server.steps = [ok("0x89"), ok("0x3a2f4c0")]
    async with client(server.url) as c:
        assert await c.chain_id() == 137
        assert await c.block_number() == 0x3A2F4C0
        s = c.stats
        assert s.calls_by_method == {"eth_chainId": 1, "eth_blockNumber": 1}
        assert s.last_success is not None and s.latency_ewma_ms > 0
        assert s.errors_by_class == {"too_large": 0, "rate_limited": 0, "transient": 0, "fatal": 0}
        snap = s.snapshot()
        assert snap["calls_by_method"]["eth_chainId"] == 1


def a_log(block: int, **fields) -> dict:
    """An eth_getLogs entry as providers send it (extra fields such as blockHash included)."""
    log = {"address": "0xaa", "topics": ["0x" + "dd" * 32], "data": "0x", "blockNumber": hex(block),
           "blockHash": "0x" + "bb" * 32, "transactionHash": "0x" + "cc" * 32, "logIndex": "0x0",
           "transactionIndex": "0x0", "removed": False}
    log.update(fields)
    return log


async def test_get_logs_params(server):
    server.steps = [ok([a_log(10), a_log(20, removed=None, blockTimestamp="0x64")])]
    async with client(server.url) as c:
        logs = await c.get_logs(10, 20, ("0xaa", "0xbb"), [("0x1", "0x2"), None])
        assert [(g.blockNumber, g.removed, g.blockTimestamp) for g in logs] == [
            ("0xa", False, None), ("0x14", None, "0x64")]
    (req,) = server.requests
    assert req["method"] == "eth_getLogs"
    assert req["params"] == [
        {"fromBlock": "0xa", "toBlock": "0x14", "address": ["0xaa", "0xbb"], "topics": [["0x1", "0x2"], None]}
    ]
    assert c.stats.getlogs_calls == 1 and c.stats.logs_received == 2


async def test_retry_after_is_honoured_without_cutting_the_rate(server):
    server.steps = [http(429, "Too Many Requests", {"Retry-After": "3"}), ok("0x1")]
    sleeps = Sleeps()
    async with client(server.url, sleeps, rps=20) as c:
        assert await c.block_number() == 1
        assert 3.0 in sleeps.calls  # waited exactly what the provider asked
        assert c.stats.rate_limit_waits == 1 and c.stats.errors_by_class["rate_limited"] == 1
        assert c.limiter.paused_until > 0  # ... and so does every other request of this client
        assert c.limiter.rate == 20 and c.limiter.decreases == 0  # one 429 is a pause, not a cut
        assert c.stats.allowed_rps == c.limiter.rate
        assert len(server.requests) == 2


async def test_sustained_429s_lower_the_rate(server):
    server.steps = [http(429, "Too Many Requests", {"Retry-After": "0.001"}) for _ in range(8)] + [ok("0x1")]
    async with client(server.url, rps=20) as c:
        assert await c.block_number() == 1
        assert c.limiter.decreases == 1 and c.limiter.rate < 20
        assert c.stats.allowed_rps == c.limiter.rate


async def test_infura_backoff_seconds(server):
    server.steps = [
        rpc_error(-32005, "daily request count exceeded, request rate limited", data={"rate": {"backoff_seconds": 7}}),
        ok("0x2"),
    ]
    sleeps = Sleeps()
    async with client(server.url, sleeps) as c:
        assert await c.block_number() == 2
    assert 7 in sleeps.calls


async def test_rate_limit_persisting_past_unavailable_after_surfaces(server):
    server.default = http(429, "Too Many Requests", {"Retry-After": "0"})
    async with client(server.url, unavailable_after=0.0) as c:
        with pytest.raises(RateLimited):
            await c.block_number()


async def test_aimd_never_exceeds_configured_rps():
    t = [0.0]
    lim = RateLimiter(10.0, clock=lambda: t[0])
    for _ in range(1000):
        lim.on_success()
    assert lim.rate == 10.0
    for _ in range(6):  # a burst of 429s: one cut
        lim.on_rate_limited(None)
    assert lim.decreases == 1 and lim.rate < 10.0
    cut = lim.rate
    for _ in range(6):  # within the cool-down: no second cut on the same burst
        lim.on_rate_limited(None)
    assert lim.rate == cut
    for _ in range(2000):
        lim.on_success()
        lim._starts.append((t[0], 1))  # in use, as if acquired
        t[0] += 0.1
    assert cut < lim.rate <= 10.0


async def test_token_bucket_spacing_uses_virtual_clock():
    t = [0.0]
    slept = []

    async def fake_sleep(s):
        slept.append(s)
        t[0] += s

    lim = RateLimiter(4.0, clock=lambda: t[0], sleep=fake_sleep)
    for _ in range(9):
        await lim.acquire()
    # capacity 1 token, then one start every 0.25 s: 8 more starts take 2 s
    assert abs(t[0] - 2.0) < 1e-9


async def test_5xx_then_success(server):
    server.steps = [http(502, "<html>bad gateway</html>"), http(503), ok("0x5")]
    async with client(server.url) as c:
        assert await c.block_number() == 5
        assert c.stats.errors_by_class["transient"] == 2 and c.stats.retries == 2


@pytest.mark.parametrize("bad", [
    {"data": "0x"},  # a log without most of its fields
    a_log(5, logIndex=None),  # a field of the wrong JSON type
    a_log(5, topics="0x" + "dd" * 32),
    "not a log",
])
async def test_log_of_the_wrong_shape_is_fetched_again(server, bad):
    server.steps = [ok([a_log(5), bad]), ok([a_log(5)])]
    async with client(server.url) as c:
        logs = await c.get_logs(1, 9, "0xaa", None)
        assert [g.blockNumber for g in logs] == ["0x5"]
        assert c.stats.invalid_responses == 1 and c.stats.getlogs_calls == 2


async def test_truncated_body_is_transient(server):
    def truncated(body):
        full = orjson.dumps({"jsonrpc": "2.0", "id": body["id"], "result": [{"x": 1}] * 50})
        return web.Response(body=full[: len(full) // 2], content_type="application/json")

    server.steps = [truncated, ok([])]
    async with client(server.url) as c:
        assert await c.get_logs(1, 2, "0xaa", None) == []
        assert c.stats.errors_by_class["transient"] == 1


async def test_transient_exhaustion_raises_unavailable_without_url(server):
    server.default = http(503, "unavailable")
    async with client(server.url, max_retries=2) as c:
        with pytest.raises(RpcUnavailable) as ei:
            await c.block_number()
    assert len(server.requests) == 3
    e = ei.value
    assert e.klass == "transient"
    assert SECRET not in str(e) and SECRET not in repr(e) and SECRET not in repr(c)
    assert e.__cause__ is None and e.__context__ is None or SECRET not in str(e.__context__)


async def test_connection_refused_is_transient_and_redacted():
    # a port nobody listens on
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/v2/{SECRET}?apikey={SECRET}"
    async with client(url, max_retries=1) as c:
        with pytest.raises(RpcUnavailable) as ei:
            await c.block_number()
    assert SECRET not in str(ei.value)


async def test_timeout_is_transient(server):
    async def slow(body):
        await asyncio.sleep(0.5)
        return ok("0x1")(body)

    server.steps = [slow, ok("0x9")]
    async with client(server.url, timeout=0.1) as c:
        assert await c.block_number() == 9
        assert c.stats.errors_by_class["transient"] == 1


async def test_too_large_and_fatal_raise_immediately(server):
    msg = (
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit "
        "on the response size, or you can request any block range with a cap of 10K logs in the response. Based "
        "on your parameters and the response size limit, this block range should work: [0x10, 0x1f]"
    )
    server.steps = [rpc_error(-32602, msg), rpc_error(-32601, "the method eth_foo does not exist/is not available")]
    async with client(server.url) as c:
        with pytest.raises(TooLarge) as ei:
            await c.get_logs(0x10, 0x100, "0xaa", None)
        assert ei.value.suggested == (0x10, 0x1F)
        with pytest.raises(Fatal):
            await c.call("eth_foo", [])
        assert c.stats.errors_by_class["too_large"] == 1 and c.stats.errors_by_class["fatal"] == 1
    assert len(server.requests) == 2


async def test_alchemy500_http400(server):
    server.steps = [
        rpc_error(
            -32600,
            "You can make eth_getLogs requests with up to a 500 block range. Based on your parameters, this block "
            "range should work: [0x0, 0x1f3]",
            status=400,
        )
    ]
    async with client(server.url) as c:
        with pytest.raises(TooLarge) as ei:
            await c.get_logs(0, 5000, "0xaa", None)
    assert ei.value.max_range == 500 and ei.value.suggested == (0, 0x1F3)


def _batch_handler(ts_of, fail_first: set | None = None):
    failed = set()

    def f(body):
        single = isinstance(body, dict)
        out = []
        for item in [body] if single else body:
            n = int(item["params"][0], 16)
            if fail_first and n in fail_first and n not in failed:
                failed.add(n)
                out.append({"jsonrpc": "2.0", "id": item["id"], "error": {"code": -32000, "message": "header not found"}})
            elif n == 999_999:
                out.append({"jsonrpc": "2.0", "id": item["id"], "result": None})
            else:
                out.append({"jsonrpc": "2.0", "id": item["id"], "result": {"number": hex(n), "timestamp": hex(ts_of(n))}})
        out.reverse()  # order must not matter
        return web.Response(body=orjson.dumps(out[0] if single else out), content_type="application/json")

    return f


async def test_block_timestamps_batch(server):
    server.default = _batch_handler(lambda n: 1_700_000_000 + 2 * n, fail_first={5, 150})
    async with client(server.url, batch_size=100) as c:
        got = await c.block_timestamps(range(0, 250))
        assert got == {n: 1_700_000_000 + 2 * n for n in range(250)}
        n_req = len(server.requests)
        # 3 chunks + one retry for each of the two chunks with a failing item (a single
        # remaining block is asked for with a plain call)
        assert n_req == 5
        assert sum(isinstance(r, dict) for r in server.requests) == 2
        assert max(len(r) for r in server.requests) == 100
        # cached: no more requests
        assert await c.block_timestamp(7) == 1_700_000_014
        assert (await c.block_timestamps([1, 2, 3])) == {1: 1_700_000_002, 2: 1_700_000_004, 3: 1_700_000_006}
        assert len(server.requests) == n_req
        assert c.stats.calls_by_method["eth_getBlockByNumber"] == 252


async def test_block_not_found_exhausts_to_unavailable(server):
    server.default = _batch_handler(lambda n: n)
    async with client(server.url, max_retries=2) as c:
        with pytest.raises(RpcUnavailable):
            await c.block_timestamps([1, 999_999])


async def test_batch_unsupported_falls_back_to_single_calls(server):
    def handler(body):
        if isinstance(body, list):
            return rpc_error(-32600, "batch requests are not supported")({"id": None})
        n = int(body["params"][0], 16)
        return ok({"timestamp": hex(100 + n)})(body)

    server.default = handler
    async with client(server.url) as c:
        assert await c.block_timestamps([1, 2, 3]) == {1: 101, 2: 102, 3: 103}


async def test_concurrency_cap(server):
    state = {"now": 0, "max": 0}

    async def slowish(body):
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.02)
        state["now"] -= 1
        return ok("0x1")(body)

    server.default = slowish
    async with client(server.url, max_concurrency=3) as c:
        await asyncio.gather(*(c.block_number() for _ in range(12)))
    assert state["max"] <= 3


async def test_a_batch_takes_one_rate_token_per_item():
    """Providers count batch items against the rate limit; so must our limiter."""
    from console.engine.rpc import RateLimiter

    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(10.0, clock=lambda: now[0], sleep=fake_sleep)
    await limiter.acquire(1)  # the bucket starts with one token
    await limiter.acquire(20)  # a batch of 20 at 10/s must wait ~2 s
    assert sum(slept) == pytest.approx(2.0, abs=0.01)
