"""Fixtures for the devchain tests.

Worlds are built once per session (generation is deterministic, so sharing is safe). Servers
run on a background event loop thread so that plain (and hypothesis) tests can call them with
a blocking HTTP client; every server a fixture starts is stopped when the fixture ends.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from urllib.parse import urlparse

import pytest

from console.devchain.server import start_server
from console.devchain.world import build_world


@pytest.fixture(scope="session")
def small_world():
    return build_world("small", seed=7)


@pytest.fixture(scope="session")
def demo_world():
    """The demo world; tests only touch its first days (generation is lazy, per day)."""
    return build_world("demo", seed=1)


class ThreadedServer:
    """A devchain server on its own event loop thread, with a blocking JSON-RPC client."""

    def __init__(self, world, profile="clean", **opts):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.srv = asyncio.run_coroutine_threadsafe(start_server(world, profile, **opts), self.loop).result(30)
        self.url = self.srv.url
        u = urlparse(self.url)
        self.host, self.port = u.hostname, u.port
        self._id = 0

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.srv.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def post(self, payload, timeout=30.0):
        """(status, headers, body bytes); raises on dropped connections."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def call(self, method, params=None, timeout=30.0):
        """One JSON-RPC call; returns (status, decoded JSON response)."""
        self._id += 1
        status, _h, body = self.post({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or []},
                                     timeout=timeout)
        return status, json.loads(body)

    def get(self, path):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()


@pytest.fixture
def serve():
    """serve(world, profile, **opts) -> ThreadedServer; all stopped at the end of the test."""
    started = []

    def _serve(world, profile="clean", **opts):
        s = ThreadedServer(world, profile, **opts)
        started.append(s)
        return s

    yield _serve
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def small_server(small_world):
    s = ThreadedServer(small_world, "clean")
    yield s
    s.stop()
