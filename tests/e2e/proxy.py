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


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.rewrites: list[Callable[[dict, dict], dict]] = []
        self.down = False  # when set, every request gets its connection dropped
        # (predicate, seconds): the first request matching a predicate hangs that long (once)
        self.hangs: list[tuple[Callable[[dict], bool], float]] = []
        self.hung_at: list[float] = []  # time.monotonic() of each hang's start
        self.requests = 0
        self.paths: set[str] = set()  # every path + query seen (URLs may carry API keys)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fault-proxy")
        self.url = ""

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)  # any path: keys live in paths too
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"

    async def _shutdown(self) -> None:
        self._closing.set()
        await self._session.close()
        await self._runner.cleanup()

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
