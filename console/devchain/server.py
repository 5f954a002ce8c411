"""The devchain JSON-RPC server (aiohttp, loopback only).

JSON-RPC 2.0 over HTTP POST, single and batch: eth_chainId, net_version, eth_blockNumber,
eth_getBlockByNumber, eth_getLogs, eth_call (ERC20 totalSupply/balanceOf of the collateral,
for worlds small enough to replay). `GET /stats` returns counters as JSON.

Speed: eth_getLogs selects positions in the per-day index and joins the pre-serialised log
bytes; nothing is re-encoded per request (a 10,000-log response is a join of 10,000 bytes
objects). Faults come from faults.py; test hooks: `latency_ms` on every request, and
`hang_blocks=(from, to)` to make eth_getLogs requests touching that range hang (until
`hang_seconds` pass, `hang_count` requests have hung, or the server stops).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from .faults import (
    HEADER_NOT_FOUND_TEXT,
    FaultProfile,
    FaultSchedule,
    RpcError,
    cap_error,
    get_profile,
    range_error,
    rpc_rate_error,
)
from .index import FilterSpec
from .world import World

LOOPBACK = {"127.0.0.1", "localhost"}
_JSON = "application/json"
SEL_TOTAL_SUPPLY = "0x18160ddd"
SEL_BALANCE_OF = "0x70a08231"


class Stats:
    """Counters served at GET /stats."""

    def __init__(self) -> None:
        self.http_requests = 0
        self.batches = 0
        self.by_method: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.logs_served = 0
        self.getlogs_calls = 0
        self.hangs = 0

    def to_dict(self) -> dict:
        return {
            "http_requests": self.http_requests,
            "batches": self.batches,
            "requests_by_method": dict(self.by_method),
            "errors_by_class": dict(self.errors),
            "errors_total": sum(self.errors.values()),
            "logs_served": self.logs_served,
            "getlogs_calls": self.getlogs_calls,
            "hangs": self.hangs,
        }


def _hex(n: int) -> str:
    return hex(n)


class DevchainServer:
    """A running devchain; `url`, `stats`, `await stop()`."""

    def __init__(self, world: World, profile: str | FaultProfile = "clean", seed: int = 1,
                 latency_ms: float = 0, hang_blocks: tuple[int, int] | None = None,
                 hang_seconds: float = 3600.0, hang_count: int | None = None, **profile_overrides):
        self.world = world
        prof = get_profile(profile)
        if profile_overrides:
            from dataclasses import replace

            prof = replace(prof, **profile_overrides)
        self.profile = prof
        self.schedule = FaultSchedule(prof, seed)
        self.latency_ms = latency_ms
        self.hang_blocks = hang_blocks
        self.hang_seconds = hang_seconds
        self.hang_count = hang_count
        self.stats = Stats()
        self.url = ""
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._balances: dict[int, tuple[Counter, Counter]] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "DevchainServer":
        if host not in LOOPBACK:
            raise ValueError(f"devchain binds loopback only (127.0.0.1), not {host!r}")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self._handle)
        app.router.add_get("/stats", self._stats)
        app.router.add_get("/", self._info)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> "DevchainServer":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _wait(self, seconds: float) -> None:
        """Sleep that ends early when the server stops (so hangs never outlive a test)."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    # -- HTTP ----------------------------------------------------------------------------------
    async def _info(self, request: web.Request) -> web.Response:
        w = self.world
        return web.json_response({
            "simulated": True, "chain_id": w.chain_id, "density": w.density_name, "seed": w.seed,
            "start_date": w.start_date.isoformat(), "days": w.days, "head": w.head, "profile": self.profile.name,
        })

    async def _stats(self, request: web.Request) -> web.Response:
        d = self.stats.to_dict()
        d["profile"] = self.profile.name
        return web.Response(body=orjson.dumps(d), content_type=_JSON)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        st = self.stats
        st.http_requests += 1
        if self.latency_ms:
            await self._wait(self.latency_ms / 1000)
        body = await request.read()
        try:
            msg = orjson.loads(body)
        except orjson.JSONDecodeError:
            st.errors["invalid"] += 1
            return self._raw(200, self._error_bytes(None, RpcError(-32700, "parse error")))
        is_batch = isinstance(msg, list)
        calls = msg if is_batch else [msg]
        if is_batch:
            st.batches += 1
            if not calls:
                st.errors["invalid"] += 1
                return self._raw(200, self._error_bytes(None, RpcError(-32600, "empty batch")))
        fp = hashlib.blake2b(orjson.dumps([(c.get("method"), c.get("params")) if isinstance(c, dict) else c
                                           for c in calls]), digest_size=16).digest()
        dec = self.schedule.next_request(fp)
        if dec.faulted:
            self.schedule.mark_faulted(fp)
        p = self.profile
        if dec.http == "429":
            st.errors["rate_limited"] += 1
            ra = p.retry_after
            return web.Response(status=429, headers={"Retry-After": str(int(ra) if ra >= 1 else ra)},
                                body=b'{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Too Many Requests"}}',
                                content_type=_JSON)
        if dec.http == "5xx":
            status = (502, 503, 504)[dec.status_choice]
            st.errors[f"http_{status}"] += 1
            text = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
            return web.Response(status=status, text=f"<html><body><h1>{status} {text}</h1></body></html>",
                                content_type="text/html")
        if dec.http == "drop":
            st.errors["dropped"] += 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        if dec.http == "slow":
            st.errors["slow"] += 1
            await self._wait(p.slow_seconds)
        out: list[bytes] = []
        status = 200
        for i, call in enumerate(calls):
            rpc_fault = dec.rpc if i == 0 else None
            b, err = await self._call(call, rpc_fault)
            if err is not None and not is_batch:
                status = err.http_status
            out.append(b)
        data = (b"[" + b",".join(out) + b"]") if is_batch else out[0]
        if dec.http == "truncate":
            st.errors["truncated"] += 1
            data = data[: max(1, len(data) // 2)]
        return self._raw(status, data)

    @staticmethod
    def _raw(status: int, data: bytes) -> web.Response:
        return web.Response(status=status, body=data, content_type=_JSON)

    @staticmethod
    def _error_bytes(rid: Any, err: RpcError) -> bytes:
        return orjson.dumps({"jsonrpc": "2.0", "id": rid, "error": err.payload()})

    # -- JSON-RPC ------------------------------------------------------------------------------
    async def _call(self, call: Any, rpc_fault: str | None) -> tuple[bytes, RpcError | None]:
        st = self.stats
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            st.errors["invalid"] += 1
            err = RpcError(-32600, "invalid request")
            return self._error_bytes(call.get("id") if isinstance(call, dict) else None, err), err
        rid = call.get("id")
        method = call["method"]
        params = call.get("params") or []
        st.by_method[method] += 1
        try:
            if rpc_fault == "rate":
                raise rpc_rate_error(self.profile)
            if rpc_fault == "header_not_found" and method in ("eth_getLogs", "eth_getBlockByNumber"):
                raise RpcError(-32000, HEADER_NOT_FOUND_TEXT, klass="header_not_found")
            result = await self._dispatch(method, params)
        except RpcError as err:
            st.errors[err.klass] += 1
            return self._error_bytes(rid, err), err
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            st.errors["invalid"] += 1
            err = RpcError(-32602, f"invalid argument: {exc}")
            return self._error_bytes(rid, err), err
        return b'{"jsonrpc":"2.0","id":' + orjson.dumps(rid) + b',"result":' + result + b"}", None

    async def _dispatch(self, method: str, params: list) -> bytes:
        w = self.world
        if method == "eth_getLogs":
            return await self._get_logs(params[0] if params else {})
        if method == "eth_chainId":
            return orjson.dumps(_hex(w.chain_id))
        if method == "net_version":
            return orjson.dumps(str(w.chain_id))
        if method == "eth_blockNumber":
            return orjson.dumps(_hex(w.head))
        if method == "eth_getBlockByNumber":
            n = self._block_number(params[0] if params else "latest")
            return orjson.dumps(self._block(n))
        if method == "eth_getBlockByHash":
            n = w.chain.block_from_hash(params[0])
            return orjson.dumps(self._block(n) if n is not None else None)
        if method == "eth_call":
            return orjson.dumps(self._eth_call(params))
        if method == "web3_clientVersion":
            return orjson.dumps("devchain/simulated-polygon")
        raise RpcError(-32601, f"the method {method} does not exist/is not available", klass="invalid")

    def _block_number(self, tag: Any) -> int:
        w = self.world
        if isinstance(tag, int):
            return tag
        if not isinstance(tag, str):
            raise RpcError(-32602, "invalid block tag", klass="invalid")
        t = tag.lower()
        if t in ("latest", "pending"):
            return w.head
        if t == "earliest":
            return 0
        if t == "finalized":
            return w.head - 200
        if t == "safe":
            return w.head - 100
        if t.startswith("0x"):
            return int(t, 16)
        raise RpcError(-32602, f"invalid block tag {tag!r}", klass="invalid")

    def _block(self, n: int) -> dict | None:
        w = self.world
        if n < 0 or n > w.head:
            return None
        return {
            "number": _hex(n),
            "hash": w.block_hash(n),
            "parentHash": w.block_hash(n - 1) if n > 0 else "0x" + "0" * 64,
            "timestamp": _hex(w.block_timestamp(n)),
            "transactions": w.block_transactions(n),
            "miner": "0x0000000000000000000000000000000000000000",
            "gasLimit": "0x1c9c380",
            "gasUsed": "0x0",
            "baseFeePerGas": "0x1e",
            "extraData": "0x",
            "logsBloom": "0x" + "0" * 512,
            "nonce": "0x0000000000000000",
            "difficulty": "0x1",
            "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
            "uncles": [],
        }

    async def _get_logs(self, f: dict) -> bytes:
        w = self.world
        st = self.stats
        st.getlogs_calls += 1
        if not isinstance(f, dict):
            raise RpcError(-32602, "invalid argument 0: filter must be an object", klass="invalid")
        if f.get("blockHash") is not None:
            if f.get("fromBlock") is not None or f.get("toBlock") is not None:
                raise RpcError(-32602, "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other",
                               klass="invalid")
            n = w.chain.block_from_hash(f["blockHash"])
            if n is None:
                raise RpcError(-32000, "unknown block", klass="invalid")
            frm = to = n
        else:
            frm = self._block_number(f.get("fromBlock", "latest") or "latest")
            to = self._block_number(f.get("toBlock", "latest") or "latest")
            if frm > to:
                raise RpcError(-32602, "invalid block range params", klass="invalid")
            err = range_error(self.profile, frm, to)
            if err is not None:
                raise err
        hb = self.hang_blocks
        if hb is not None and frm <= hb[1] and to >= hb[0] and (self.hang_count is None or self.hang_count > 0):
            if self.hang_count is not None:
                self.hang_count -= 1
            st.hangs += 1
            await self._wait(self.hang_seconds)
        to = min(to, w.head)
        if frm > to:
            return b"[]"
        spec = FilterSpec.from_params(f.get("address"), f.get("topics"))
        groups = w.query(frm, to, spec)
        count = sum(len(p) for _, p in groups)

        def nth_block(i: int) -> int:
            for dl, pos in groups:
                if i < len(pos):
                    return dl.blocks[pos[i]]
                i -= len(pos)
            raise IndexError(i)

        err = cap_error(self.profile, frm, to, count, nth_block)
        if err is not None:
            raise err
        st.logs_served += count
        if not groups:
            return b"[]"
        parts: list[bytes] = []
        for dl, pos in groups:
            raw = dl.raw
            parts.extend([raw[p] for p in pos])
        return b"[" + b",".join(parts) + b"]"

    # -- eth_call (collateral ERC20 only) ------------------------------------------------------
    def _eth_call(self, params: list) -> str:
        w = self.world
        tx = params[0] if params else {}
        to = (tx.get("to") or "").lower()
        data = (tx.get("data") or tx.get("input") or "").lower()
        n = self._block_number(params[1] if len(params) > 1 else "latest")
        if to not in w.profile.all_collateral():
            raise RpcError(-32000, "execution reverted", klass="invalid")
        if w.days > 60:
            raise RpcError(-32000, "eth_call not supported by the devchain for worlds over 60 days", klass="invalid")
        bal, supply = self._balances_at(to, n)
        if data.startswith(SEL_TOTAL_SUPPLY):
            return "0x" + format(supply, "064x")
        if data.startswith(SEL_BALANCE_OF) and len(data) >= 10 + 64:
            who = "0x" + data[10 + 24 : 10 + 64]
            return "0x" + format(max(0, bal.get(who, 0)), "064x")
        raise RpcError(-32000, "execution reverted", klass="invalid")

    def _balances_at(self, token: str, n: int) -> tuple[dict, int]:
        """Replay the token's transfers up to block n (balances counted from the world's start)."""
        from console.protocol import TOPIC_TRANSFER

        w = self.world
        spec = FilterSpec.from_params(token, [TOPIC_TRANSFER])
        bal: Counter = Counter()
        supply = 0
        for dl, pos in w.query(0, min(n, w.head), spec):
            for p in pos:
                t = dl.topics[p]
                v = int(orjson.loads(dl.raw[p])["data"], 16)
                frm, to = "0x" + t[1][-40:], "0x" + t[2][-40:]
                if frm == "0x" + "0" * 40:
                    supply += v
                else:
                    bal[frm] -= v
                if to == "0x" + "0" * 40:
                    supply -= v
                else:
                    bal[to] += v
        return bal, supply


async def start_server(world: World, profile: str | FaultProfile = "clean", host: str = "127.0.0.1",
                       port: int = 0, latency_ms: float = 0, seed: int = 1, **options) -> DevchainServer:
    """Start a devchain server on loopback; returns it running (`.url`, `.stats`, `await .stop()`)."""
    srv = DevchainServer(world, profile, seed=seed, latency_ms=latency_ms, **options)
    await srv.start(host, port)
    return srv
