"""A fault-injecting JSON-RPC proxy in front of the devchain, for failures no profile has.

Real HTTP on 127.0.0.1 with its own event loop on a thread, so the engine under test talks to
it exactly as to a provider. Rules see each JSON-RPC request and may answer it themselves,
rewrite the upstream answer, or let it through.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import aiohttp
import orjson
from aiohttp import web

Rule = Callable[[dict], Any]  # returns None (forward) or a response dict / web.Response


class LoopbackServer:
    """An aiohttp app on 127.0.0.1:<free port>, served by its own event loop on a thread, so a
    test's engine (in the test's loop or its own) talks to it over real HTTP. Subclasses build
    the app in `make_app()`; `url` and `port` are set once it listens."""

    name = "loopback-server"

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=self.name)
        self.url = ""
        self.port = 0

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def make_app(self) -> web.Application:
        raise NotImplementedError

    async def _start(self) -> None:
        self._runner = web.AppRunner(await self.make_app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"

    async def _shutdown(self) -> None:
        await self._runner.cleanup()


class FaultProxy(LoopbackServer):
    name = "fault-proxy"

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.rewrites: list[Callable[[dict, dict], dict]] = []
        self.down = False  # when set, every request gets its connection dropped
        # (predicate, seconds): the first request matching a predicate hangs that long (once)
        self.hangs: list[tuple[Callable[[dict], bool], float]] = []
        self.hung_at: list[float] = []  # time.monotonic() of each hang's start
        self.requests = 0
        self.paths: set[str] = set()  # every path + query seen (URLs may carry API keys)

    async def make_app(self) -> web.Application:
        self._closing = asyncio.Event()
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)  # any path: keys live in paths too
        return app

    async def _shutdown(self) -> None:
        self._closing.set()
        await self._session.close()
        await super()._shutdown()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.paths.add(request.path_qs)
        if self.down:
            request.transport.close()
            return web.Response(status=503)
        body = await request.read()
        payload = orjson.loads(body)
        if isinstance(payload, dict):
            for i, (predicate, seconds) in enumerate(self.hangs):
                if predicate(payload):
                    del self.hangs[i]
                    self.hung_at.append(time.monotonic())
                    try:  # a hang ends early when the proxy shuts down
                        await asyncio.wait_for(self._closing.wait(), seconds)
                    except asyncio.TimeoutError:
                        pass
                    if self._closing.is_set():
                        return web.Response(status=503)
                    break
            for rule in self.rules:
                answer = rule(payload)
                if isinstance(answer, web.StreamResponse):
                    return answer
                if answer is not None:
                    return web.Response(body=orjson.dumps(answer), content_type="application/json")
        async with self._session.post(self.upstream, data=body,
                                      headers={"Content-Type": "application/json"}) as resp:
            raw = await resp.read()
            status = resp.status
        if isinstance(payload, dict) and self.rewrites and status == 200:
            reply = orjson.loads(raw)
            for rewrite in self.rewrites:
                reply = rewrite(payload, reply)
            raw = orjson.dumps(reply)
        return web.Response(body=raw, status=status, content_type="application/json")


def get_logs_range(payload: dict) -> tuple[int, int] | None:
    if payload.get("method") != "eth_getLogs":
        return None
    f = payload["params"][0]
    return int(f["fromBlock"], 16), int(f["toBlock"], 16)


def poisoned_block(block: int) -> Rule:
    """A rule answering every eth_getLogs that covers `block` with Ankr's hint-less "too many
    results": no split can ever fetch that block, so its day must end FAILED."""

    def rule(payload: dict):
        rng = get_logs_range(payload)
        if rng and rng[0] <= block <= rng[1]:
            return {"jsonrpc": "2.0", "id": payload["id"],
                    "error": {"code": -32600, "message": "query exceeds max results"}}
        return None

    return rule
