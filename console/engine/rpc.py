"""JSON-RPC client: one aiohttp session, shared rate limit (token bucket + AIMD), concurrency cap,
retries with jittered exponential backoff (tenacity) and error classification (errors.classify).

Policy per error class (DESIGN §6.3):
- rate_limited: handled here. Honour Retry-After / data.rate.backoff_seconds (a pause shared by all
  requests of this client), retry. Only *sustained* rate limiting (many 429s, a good share of the
  requests, within ``_WINDOW`` seconds) lowers the allowed request rate, from the rate sustained
  over that window (see RateLimiter); an isolated 429 is just a pause. Success raises the rate
  again (additive increase, never above ``rps`` when set). Callers only see RateLimited if it
  persists for ``unavailable_after`` seconds.
- transient: retried with jittered exponential backoff up to ``max_retries`` times (or
  ``unavailable_after`` seconds), then RpcUnavailable.
- too_large and fatal: raised at once (the range planner splits; fatal stops the shard).

The URL is a secret (API keys in path or query): it never appears in an exception, a log or a
repr; aiohttp exception texts are scrubbed before classification.

Counting: ``stats.calls_by_method`` and ``stats.getlogs_calls`` count HTTP attempts (what the
provider bills), including failed ones; a JSON-RPC batch counts each item under its method and
one ``http_requests``.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from typing import Any, Callable, Iterable

import orjson

from .errors import (
    Fatal,
    InvalidResponse,
    RateLimited,
    RpcError,
    register_secrets,
    RpcUnavailable,
    TooLarge,
    Transient,
    _redact,
    classify,
)
from .wire import LogsReply, RawLog, read_logs_reply

__all__ = ["RpcClient", "RpcStats", "RateLimiter"]

_WINDOW = 10.0  # seconds of history behind a rate cut
_SUSTAINED_MIN = 8  # a cut needs at least this many 429s in the window...
_SUSTAINED_FRACTION = 0.25  # ...and at least this fraction of the requests started in it
_BURST_MIN = 6  # or this many within _BURST_WINDOW s: the requests in flight all hitting an empty
_BURST_WINDOW = 0.5  # bucket (random 429s hit a few of them: ~1.3 of 16 at hostile's 8 %)
_CUT_FLOOR = 0.25  # a cut never goes below this share of the rate attempted in the window
_DECREASE_FACTOR_MAX = 0.9  # a cut is at least 10 % of the current rate
_DECREASE_COOLDOWN = 2.0  # seconds after a cut before 429s count again (requests in flight)
_MIN_RPS = 0.2
_UNLIMITED = 1e9
_BATCH_SIZE = 100
_TS_CACHE_MAX = 500_000


class RpcStats:
    """Counters the supervisor snapshots. Plain attributes: reading is free."""

    __slots__ = (
        "calls_by_method",
        "errors_by_class",
        "getlogs_calls",
        "logs_received",
        "latency_ewma_ms",
        "allowed_rps",
        "last_success",
        "rate_limit_waits",
        "rate_limit_wait_seconds",
        "oversize_failures",
        "invalid_responses",
        "retries",
        "http_requests",
        "bytes_received",
        "in_flight",
        "parse_seconds",
    )

    def __init__(self) -> None:
        self.calls_by_method: dict[str, int] = collections.defaultdict(int)
        self.errors_by_class: dict[str, int] = {
            "too_large": 0,
            "rate_limited": 0,
            "transient": 0,
            "fatal": 0,
        }
        self.getlogs_calls = 0
        self.logs_received = 0
        self.latency_ewma_ms = 0.0
        self.allowed_rps: float | None = None  # None: no limit in force
        self.last_success: float | None = None  # time.monotonic()
        self.rate_limit_waits = 0
        self.rate_limit_wait_seconds = 0.0
        self.oversize_failures = 0  # failed eth_getLogs calls because the response was too large
        self.invalid_responses = 0  # responses rejected by validation/decoding
        self.retries = 0
        self.http_requests = 0
        self.bytes_received = 0
        self.in_flight = 0
        self.parse_seconds = 0.0  # time spent parsing reply bodies (the bench's breakdown)

    def snapshot(self) -> dict:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["calls_by_method"] = dict(self.calls_by_method)
        d["errors_by_class"] = dict(self.errors_by_class)
        return d

    def __repr__(self) -> str:
        return f"RpcStats({self.snapshot()!r})"


class RateLimiter:
    """Token bucket governing request *starts* (a batch takes one token per item), with AIMD on
    the rate and a pause shared by every acquirer.

    ``rate`` None means unlimited (until the provider rate-limits us in earnest).

    Rate limits: a 429 / -32005 always pauses everyone for its Retry-After (the provider's limit
    is per key, not per request). It cuts the rate only when rate limiting is *sustained*: at
    least ``_SUSTAINED_MIN`` of them, and at least ``_SUSTAINED_FRACTION`` of the requests started,
    within the last ``_WINDOW`` seconds. An isolated 429 (a provider's random or per-second blip:
    `hostile` answers 8 % of requests with one, at any rate) only pauses: cutting on each of them
    ratchets the rate down to nothing, as every cut starts from a rate that the pauses and a few
    big calls already made small. A cut starts from what was sustained over the window: the
    larger of half the rate attempted and 0.9 x the rate the provider accepted (a bucket of B rps
    accepts ~B whatever we attempt, so we land just under it instead of halving past it), never
    above the current rate or the user's ``rps``, never below ``_MIN_RPS``. After a cut, 429s of
    requests still in flight are not evidence against the new rate: the next cut needs new
    evidence gathered after ``_DECREASE_COOLDOWN`` (or the Retry-After, if longer).
    """

    def __init__(
        self,
        rps: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ):
        self.max_rps = rps if rps and rps > 0 else None
        self.rate: float | None = self.max_rps
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._capacity()
        self._last = clock()
        self.paused_until = 0.0
        self._last_decrease = -1e18
        self._evidence_from = -1e18  # 429s and starts before this do not count towards a cut
        self._starts: collections.deque[tuple[float, int]] = collections.deque()  # (time, cost)
        self._limited: collections.deque[float] = collections.deque()  # times of 429s
        self._used_at, self._used = -1e18, 0.0  # observed_rps(2 s) in tokens, and when
        self.decreases = 0  # rate cuts so far (stats, tests)
        self.rate_limited = 0  # 429s seen so far

    def _capacity(self) -> float:
        return 1.0 if self.rate is None else max(1.0, self.rate * 0.1)

    def _prune(self, now: float) -> None:
        edge = now - _WINDOW
        starts, limited = self._starts, self._limited
        while starts and starts[0][0] < edge:
            starts.popleft()
        while limited and limited[0] < edge:
            limited.popleft()

    def observed_rps(self, window: float = 2.0, cost: bool = False) -> float:
        """Request starts (or tokens, with ``cost``) per second over the last ``window`` seconds
        (at most ``_WINDOW``)."""
        now = self._clock()
        n = sum((c if cost else 1) for t, c in self._starts if now - t <= window)
        return n / window

    async def _wait_pause(self) -> None:
        waited_for = None
        while True:  # the shared pause (Retry-After); it may be extended while we wait
            pu = self.paused_until
            now = self._clock()
            if now >= pu or waited_for == pu:
                return
            waited_for = pu
            await self._sleep(pu - now)

    async def acquire(self, cost: int = 1) -> float:
        """Wait for the pause and for ``cost`` tokens; returns the start time (the clock's)."""
        await self._wait_pause()
        rate = self.rate
        if rate is not None:
            now = self._clock()
            cap = self._capacity()
            self._tokens = min(cap, self._tokens + (now - self._last) * rate)
            self._last = now
            self._tokens -= float(cost)  # reserve (may go negative: FIFO waiting)
            if self._tokens < 0:
                await self._sleep(-self._tokens / rate)
                if self.paused_until > self._clock():  # a 429 arrived while we queued
                    await self._wait_pause()
        now = self._clock()
        self._starts.append((now, cost))
        if len(self._starts) > 4096:
            self._prune(now)
        return now

    def on_success(self) -> None:
        rate = self.rate
        if rate is None:
            return
        now = self._clock()
        if now - self._used_at >= 0.25:  # how much of the rate we use, refreshed 4 times a second
            self._used_at, self._used = now, self.observed_rps(2.0, cost=True)
        if rate > 2.0 * self._used + 1.0:
            return  # not using what we have (pauses, concurrency): growing it means nothing
        # Additive increase: about max(1, 10% of rate) requests/s more per second of successes.
        rate += max(1.0, 0.1 * rate) / rate
        if self.max_rps is not None:
            rate = min(rate, self.max_rps)
        elif rate > _UNLIMITED:
            rate = _UNLIMITED
        self.rate = rate

    def on_rate_limited(self, retry_after: float | None) -> bool:
        """A 429 / rate-limit error: pause everyone for ``retry_after``; cut the rate if rate
        limiting is sustained (see the class doc). Returns True when the rate was cut."""
        now = self._clock()
        self.rate_limited += 1
        if retry_after is not None and retry_after > 0:
            self.paused_until = max(self.paused_until, now + retry_after)
        self._prune(now)
        if now < self._evidence_from:
            return False
        self._limited.append(now)
        since = max(now - _WINDOW, self._evidence_from)
        n_limited = sum(1 for t in self._limited if t >= since)
        if n_limited < min(_SUSTAINED_MIN, _BURST_MIN):
            return False
        started = [(t, c) for t, c in self._starts if t >= since]
        burst = sum(1 for t in self._limited if t >= max(since, now - _BURST_WINDOW))
        if burst < _BURST_MIN and (
            n_limited < _SUSTAINED_MIN or n_limited < _SUSTAINED_FRACTION * max(1, len(started))
        ):
            return False
        # Sustained: cut from the rate sustained over the window (cost units per second).
        span = max(0.5, now - min((t for t, _ in started), default=now))
        attempted = sum(c for _, c in started) / span
        accepted = attempted * max(0.0, 1.0 - n_limited / max(1, len(started)))
        new = max(_CUT_FLOOR * attempted, 0.9 * accepted)
        if self.rate is not None:
            new = min(new, self.rate * _DECREASE_FACTOR_MAX)
        if self.max_rps is not None:
            new = min(new, self.max_rps)
        self.rate = max(_MIN_RPS, new)
        self._tokens = min(self._tokens, 0.0)
        self._last_decrease = now
        self._evidence_from = now + max(_DECREASE_COOLDOWN, retry_after or 0.0)
        self._limited.clear()
        self.decreases += 1
        return True


def _hex(n: int) -> str:
    return hex(n)


class RpcClient:
    """Async JSON-RPC client for one provider URL (a secret)."""

    def __init__(
        self,
        url: str,
        *,
        rps: float | None = None,
        max_concurrency: int = 16,
        timeout: float = 30.0,
        max_retries: int = 8,
        unavailable_after: float = 120.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 10.0,
        batch_size: int = _BATCH_SIZE,
        sleep: Callable[[float], Any] | None = None,
    ):
        self._url = url
        from console.settings import secret_fragments  # noqa: PLC0415

        register_secrets(secret_fragments(url))
        self.timeout = timeout
        self.max_retries = max_retries
        self.unavailable_after = unavailable_after
        self.max_concurrency = max(1, int(max_concurrency))
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.batch_size = max(1, int(batch_size))
        self._sleep = sleep or asyncio.sleep
        self.stats = RpcStats()
        self.limiter = RateLimiter(rps, sleep=self._sleep)
        self.stats.allowed_rps = self.limiter.rate
        self._sem: asyncio.Semaphore | None = None
        self._session: Any = None
        self._session_loop: Any = None
        self._id = 0
        self._ts_cache: dict[int, int] = {}
        self._batch_ok = True

    # ------------------------------------------------------------------ lifecycle
    def __repr__(self) -> str:
        return f"RpcClient({self.redacted_url})"

    @property
    def redacted_url(self) -> str:
        return _redact(self._url)

    async def __aenter__(self) -> "RpcClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        s, self._session = self._session, None
        if s is not None and not s.closed:
            try:
                await s.close()
            except Exception:  # pragma: no cover
                pass

    def _get_session(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            import aiohttp  # noqa: PLC0415

            connector = aiohttp.TCPConnector(limit=self.max_concurrency, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
            self._session_loop = loop
            self._sem = asyncio.Semaphore(self.max_concurrency)
        return self._session

    def _scrub(self, text: str) -> str:
        url = self._url
        if url and url in text:
            text = text.replace(url, self.redacted_url)
        # aiohttp messages sometimes carry only the path+query part.
        try:
            from urllib.parse import urlsplit  # noqa: PLC0415

            parts = urlsplit(url)
            tail = parts.path + (("?" + parts.query) if parts.query else "")
            if len(tail) > 1 and tail in text:
                text = text.replace(tail, "/***")
            if parts.password and parts.password in text:
                text = text.replace(parts.password, "***")
        except Exception:  # pragma: no cover
            pass
        return text

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    # ------------------------------------------------------------------ transport
    async def _post(self, body: bytes, cost: int = 1,
                    parse: Callable[[bytes], Any] | None = None) -> Any:
        """One HTTP exchange. Returns the parsed JSON; raises classified errors for failures.

        `cost`: rate-limit tokens it takes; a batch costs one per item, as providers count it.
        `parse`: reads a 2xx body instead of orjson (returns None for a body that is not JSON);
        an error status is always read with orjson.
        """
        await self.limiter.acquire(cost)
        session = self._get_session()
        st = self.stats
        import aiohttp  # noqa: PLC0415  (already imported by _get_session)

        assert self._sem is not None
        async with self._sem:
            st.http_requests += 1
            st.in_flight += 1
            t0 = time.monotonic()
            try:
                async with session.post(self._url, data=body) as resp:
                    raw = await resp.read()
                    status = resp.status
                    headers = resp.headers
            except asyncio.TimeoutError:
                raise Transient(f"request timed out after {self.timeout:g}s") from None
            except (aiohttp.ClientError, OSError, ValueError) as e:
                text = self._scrub(f"{type(e).__name__}: {e}")
                err = classify(None, None, text) or Transient(text)
                raise err from None
            finally:
                st.in_flight -= 1
        ms = (time.monotonic() - t0) * 1000.0
        st.latency_ewma_ms = ms if st.latency_ewma_ms == 0.0 else st.latency_ewma_ms * 0.9 + ms * 0.1
        st.bytes_received += len(raw)
        t_parse = time.perf_counter()
        try:
            obj = parse(raw) if parse is not None and 200 <= status < 300 else orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        finally:
            st.parse_seconds += time.perf_counter() - t_parse
        if obj is None or not (200 <= status < 300):
            err_obj = obj.get("error") if isinstance(obj, dict) else None
            if obj is None:
                snippet = raw[:200].decode("utf-8", "replace").strip()
                if 200 <= status < 300 or snippet[:1] in ("{", "["):
                    text = f"truncated or malformed JSON body ({len(raw)} bytes)"
                else:
                    text = self._scrub(snippet) or f"HTTP {status}"
            else:
                text = None
            e = classify(status, err_obj, text, headers)
            if e is None:
                e = Transient(f"unexpected HTTP {status}", http_status=status)
            raise e
        return obj

    def _check_single(self, obj: Any, rid: int) -> Any:
        if isinstance(obj, LogsReply):
            err, has_result = obj.error, obj.result is not None
        elif isinstance(obj, dict):
            err, has_result = obj.get("error"), "result" in obj
        else:
            raise InvalidResponse("JSON-RPC response is not an object")
        if err is not None:
            e = classify(200, err if isinstance(err, dict) else {"message": str(err)}, None)
            raise e or Transient("JSON-RPC error")
        if not has_result:
            raise InvalidResponse("JSON-RPC response without result")
        return obj.result if isinstance(obj, LogsReply) else obj["result"]

    def _count_error(self, e: RpcError) -> None:
        k = e.klass
        self.stats.errors_by_class[k] = self.stats.errors_by_class.get(k, 0) + 1

    async def _with_policy(self, attempt_fn: Callable[[], Any], what: str) -> Any:
        """Run ``attempt_fn`` under the rate-limit / transient retry policy."""
        from tenacity import (  # noqa: PLC0415
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            stop_after_delay,
            wait_random_exponential,
        )

        st = self.stats
        limiter = self.limiter

        async def rate_limited_attempt() -> Any:
            first_rl: float | None = None
            n_rl = 0
            while True:
                try:
                    result = await attempt_fn()
                except RateLimited as e:
                    self._count_error(e)
                    now = time.monotonic()
                    first_rl = first_rl if first_rl is not None else now
                    if now - first_rl >= self.unavailable_after:
                        raise
                    limiter.on_rate_limited(e.retry_after)
                    st.allowed_rps = limiter.rate
                    if e.retry_after is not None:
                        wait = e.retry_after
                    else:
                        wait = min(self.backoff_max, self.backoff_initial * (2**n_rl)) * random.uniform(0.5, 1.0)
                    n_rl += 1
                    st.rate_limit_waits += 1
                    st.rate_limit_wait_seconds += wait
                    await self._sleep(wait)
                    continue
                except (TooLarge, Fatal) as e:
                    self._count_error(e)
                    raise
                except RpcUnavailable:
                    raise
                except Transient as e:
                    self._count_error(e)
                    if isinstance(e, InvalidResponse):
                        st.invalid_responses += 1
                    raise
                limiter.on_success()
                st.allowed_rps = limiter.rate
                st.last_success = time.monotonic()
                return result

        def before_sleep(_state: Any) -> None:
            st.retries += 1

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1) | stop_after_delay(self.unavailable_after),
            wait=wait_random_exponential(multiplier=self.backoff_initial, max=self.backoff_max),
            retry=retry_if_exception_type(Transient),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    result = await rate_limited_attempt()
        except RpcUnavailable:
            raise
        except Transient as e:
            raise RpcUnavailable(
                f"{what}: provider unavailable after {self.max_retries} retries: {e.message}",
                code=e.code,
                http_status=e.http_status,
            ) from None
        return result

    # ------------------------------------------------------------------ public calls
    async def call(self, method: str, params: Any, *, validate: Callable[[Any], Any] | None = None,
                   parse: Callable[[bytes], Any] | None = None) -> Any:
        """One JSON-RPC call under the retry policy. ``validate(result)`` may raise InvalidResponse
        (retried as transient) and may return a transformed result; ``parse``: see _post."""
        st = self.stats

        async def attempt() -> Any:
            rid = self._next_id()
            body = orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            st.calls_by_method[method] += 1
            if method == "eth_getLogs":
                st.getlogs_calls += 1
            obj = await self._post(body, parse=parse)
            result = self._check_single(obj, rid)
            return validate(result) if validate is not None else result

        return await self._with_policy(attempt, method)

    async def batch(self, calls: list[tuple[str, Any]]) -> list[Any]:
        """One JSON-RPC batch (single HTTP request) under the retry policy for the whole request.

        Returns one entry per call, in order: the result, or an RpcError instance for a per-item
        error (not raised). A whole-batch failure raises like ``call``.
        """
        st = self.stats

        async def attempt() -> list[Any]:
            ids = []
            payload = []
            for method, params in calls:
                rid = self._next_id()
                ids.append(rid)
                payload.append({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
                st.calls_by_method[method] += 1
            obj = await self._post(orjson.dumps(payload), cost=len(payload))
            if isinstance(obj, dict):  # the whole batch was rejected
                err = obj.get("error")
                e = classify(200, err if isinstance(err, dict) else {"message": str(err)}, None)
                raise e or InvalidResponse("batch answered with a single object")
            if not isinstance(obj, list):
                raise InvalidResponse("batch response is not a list")
            by_id: dict[Any, Any] = {}
            for item in obj:
                if isinstance(item, dict):
                    by_id[item.get("id")] = item
            out: list[Any] = []
            for rid in ids:
                item = by_id.get(rid)
                if item is None:
                    out.append(Transient("batch item missing from the response"))
                elif item.get("error") is not None:
                    err = item["error"]
                    e = classify(200, err if isinstance(err, dict) else {"message": str(err)}, None)
                    out.append(e or Transient("JSON-RPC error"))
                elif "result" not in item:
                    out.append(InvalidResponse("batch item without result"))
                else:
                    out.append(item["result"])
            return out

        return await self._with_policy(attempt, "batch")

    async def chain_id(self) -> int:
        return int(await self.call("eth_chainId", []), 16)

    async def block_number(self) -> int:
        return int(await self.call("eth_blockNumber", []), 16)

    @staticmethod
    def _block_ts(result: Any, n: int) -> int:
        if not isinstance(result, dict) or "timestamp" not in result:
            raise InvalidResponse(f"block {n} not found")
        try:
            return int(result["timestamp"], 16)
        except (TypeError, ValueError):
            raise InvalidResponse(f"block {n}: bad timestamp") from None

    def _cache_ts(self, n: int, ts: int) -> None:
        c = self._ts_cache
        if len(c) >= _TS_CACHE_MAX:
            for k in list(c)[: _TS_CACHE_MAX // 2]:  # dicts keep insertion order: drop the oldest
                del c[k]
        c[n] = ts

    async def block_timestamp(self, n: int) -> int:
        ts = self._ts_cache.get(n)
        if ts is not None:
            return ts
        ts = await self.call("eth_getBlockByNumber", [_hex(n), False], validate=lambda r: self._block_ts(r, n))
        self._cache_ts(n, ts)
        return ts

    async def block_timestamps(self, blocks: Iterable[int]) -> dict[int, int]:
        """Timestamps of many blocks, via JSON-RPC batches of up to ``batch_size`` requests."""
        wanted = sorted(set(int(b) for b in blocks))
        out: dict[int, int] = {}
        missing = []
        for b in wanted:
            ts = self._ts_cache.get(b)
            if ts is None:
                missing.append(b)
            else:
                out[b] = ts
        if not missing:
            return out
        chunks = [missing[i : i + self.batch_size] for i in range(0, len(missing), self.batch_size)]
        results = await asyncio.gather(*(self._timestamps_chunk(c) for c in chunks))
        for r in results:
            out.update(r)
        return out

    async def _timestamps_chunk(self, blocks: list[int]) -> dict[int, int]:
        got: dict[int, int] = {}
        todo = list(blocks)
        rounds = 0
        while todo:
            if not self._batch_ok or len(todo) == 1:
                for b in todo:
                    got[b] = await self.block_timestamp(b)
                return got
            try:
                res = await self.batch([("eth_getBlockByNumber", [_hex(b), False]) for b in todo])
            except (Fatal, TooLarge):
                # Provider does not take batches (or not this size): fall back to single calls.
                self._batch_ok = False
                continue
            failed: list[int] = []
            last_err: RpcError | None = None
            retry_after = None
            for b, r in zip(todo, res):
                if isinstance(r, RpcError):
                    self._count_error(r)
                    if isinstance(r, (Fatal, TooLarge)):
                        raise r
                    if isinstance(r, RateLimited) and r.retry_after:
                        retry_after = max(retry_after or 0.0, r.retry_after)
                    failed.append(b)
                    last_err = r
                    continue
                try:
                    ts = self._block_ts(r, b)
                except InvalidResponse as e:
                    failed.append(b)
                    last_err = e
                    continue
                got[b] = ts
                self._cache_ts(b, ts)
            todo = failed
            if todo:
                rounds += 1
                if rounds > self.max_retries:
                    raise RpcUnavailable(
                        f"eth_getBlockByNumber: {len(todo)} blocks still failing after {rounds} rounds: "
                        f"{last_err.message if last_err else ''}"
                    )
                if isinstance(last_err, RateLimited):
                    self.limiter.on_rate_limited(retry_after)
                    self.stats.allowed_rps = self.limiter.rate
                    self.stats.rate_limit_waits += 1
                wait = retry_after if retry_after is not None else min(
                    self.backoff_max, self.backoff_initial * (2 ** (rounds - 1))
                ) * random.uniform(0.5, 1.0)
                self.stats.retries += 1
                await self._sleep(wait)
        return got

    async def get_logs(self, from_block: int, to_block: int, address: Any, topics: Any) -> list[RawLog]:
        """eth_getLogs over [from_block, to_block]. ``address``: str, list/tuple or None.
        The logs come typed (console/engine/wire.py): the ingest hot path's parse."""
        flt: dict[str, Any] = {"fromBlock": _hex(from_block), "toBlock": _hex(to_block)}
        if address is not None:
            flt["address"] = list(address) if isinstance(address, (tuple, set, frozenset)) else address
        if topics is not None:
            flt["topics"] = [list(t) if isinstance(t, tuple) else t for t in topics]

        logs = await self.call("eth_getLogs", [flt], parse=read_logs_reply)
        self.stats.logs_received += len(logs)
        return logs
