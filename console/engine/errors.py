"""RPC error taxonomy and the provider-message classifier (DESIGN §6.3).

Every failure of a JSON-RPC call ends up as exactly one of four classes:

- ``too_large``   the response (or the block range) exceeds a provider limit: split the *failing*
                  sub-range, at the provider's suggested boundary when the message has one;
- ``rate_limited`` back off (Retry-After / backoff_seconds) and lower the shared request rate;
- ``transient``   timeouts, 5xx, dropped connections, truncated JSON: retry with jittered backoff;
- ``fatal``       method not found, auth, invalid params that no split fixes: stop and say why.

``classify`` is a pure function so that the table of real provider texts can be tested without
a network. Messages are kept short and never contain the RPC URL (it carries API keys): the
client scrubs exception texts before they get here, and ``_clean`` scrubs anything URL-shaped.
"""

from __future__ import annotations

import datetime as _dt
import email.utils as _eu
import re
from typing import Any, Mapping, Iterable

__all__ = [
    "RpcError",
    "TooLarge",
    "Unsplittable",
    "RateLimited",
    "Transient",
    "InvalidResponse",
    "RpcUnavailable",
    "Fatal",
    "DayNotFinal",
    "classify",
    "parse_retry_after",
]

_MAX_MESSAGE = 500


class RpcError(Exception):
    """Base of every classified RPC failure. ``message`` is already redacted."""

    klass = "fatal"

    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None):
        self.message = _clean(message)
        self.code = code
        self.http_status = http_status
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class TooLarge(RpcError):
    """The request asks for more than the provider serves in one response.

    ``suggested``: the (from, to) range the provider says will work (Alchemy, Infura, Erigon).
    ``max_range``: a block-range limit stated by the message (QuickNode, Polygon, alchemy500...).
    ``max_results``: a log-count cap stated by the message (Alchemy 10K, Infura 10000, Erigon).
    ``kind``: "range" when the *block range* is the problem, "results" when the *log count* is,
    None when the message does not say (treat as results: halve).
    """

    klass = "too_large"

    def __init__(
        self,
        message: str,
        suggested: tuple[int, int] | None = None,
        max_range: int | None = None,
        max_results: int | None = None,
        *,
        kind: str | None = None,
        code: int | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message, code=code, http_status=http_status)
        self.suggested = suggested
        self.max_range = max_range
        self.max_results = max_results
        self.kind = kind


class Unsplittable(TooLarge):
    """A single block is still too large for the provider: the day cannot be fetched here."""


class RateLimited(RpcError):
    klass = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Transient(RpcError):
    klass = "transient"


class InvalidResponse(Transient):
    """A response that parsed but is not what was asked for (malformed log, wrong range...)."""


class RpcUnavailable(RpcError):
    """Transient failures persisted past the retry budget: the provider is not answering."""

    klass = "transient"


class Fatal(RpcError):
    klass = "fatal"


class DayNotFinal(Exception):
    """The day's last block is within ``finality`` blocks of the head, or the day has not ended."""

    def __init__(self, day: _dt.date, end_block: int | None, head: int, finality: int | None = None):
        self.day = day
        self.end_block = end_block
        self.head = head
        self.finality = finality
        if end_block is None:
            msg = f"day {day.isoformat()} has not ended yet on chain (head block {head}); not final"
        else:
            fin = f" {finality}" if finality is not None else ""
            msg = (
                f"day {day.isoformat()} is not final: its last block {end_block} is within"
                f"{fin} blocks of the head {head} (needs end_block <= head - finality)"
            )
        super().__init__(msg)


# --------------------------------------------------------------------------- helpers

_URL_RE = re.compile(r"(?i)\b(?:https?|wss?)://[^\s'\"<>),\]]+")


def _redact(url: str) -> str:
    try:  # the lead's helper, when it exists
        from console.settings import redact  # noqa: PLC0415

        return redact(url)
    except Exception:  # pragma: no cover - settings not ready / import problems
        m = re.match(r"(?i)^([a-z]+://)(?:[^@/]*@)?([^/?#]*)", url)
        return f"{m.group(1)}{m.group(2)}/***" if m else "***"


_SECRETS: set[str] = set()


def register_secrets(fragments: Iterable[str]) -> None:
    """Pieces of the RPC URL (keys, passwords) that no error message may repeat; the client
    registers its URL's on creation, so every RpcError is scrubbed wherever it was made."""
    _SECRETS.update(f for f in fragments if f)


def _clean(message: Any, limit: int | None = _MAX_MESSAGE) -> str:
    text = str(message) if message is not None else ""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    if "://" in text:
        text = _URL_RE.sub(lambda m: _redact(m.group(0)), text)
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text


def _num(s: str) -> int:
    """'10,000' -> 10000, '10K' -> 10000, '2k' -> 2000, '0x10' -> 16."""
    s = s.strip().replace(",", "").replace("_", "")
    if s.lower().startswith("0x"):
        return int(s, 16)
    mult = 1
    if s[-1:] in "kK":
        mult, s = 1000, s[:-1]
    elif s[-1:] in "mM":
        mult, s = 1_000_000, s[:-1]
    return int(float(s) * mult)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        v = headers.get(name)
        if v is None and isinstance(headers, Mapping):
            low = name.lower()
            for k, val in headers.items():
                if str(k).lower() == low:
                    return str(val)
        return None if v is None else str(v)
    except Exception:
        return None


def parse_retry_after(value: str | None) -> float | None:
    """HTTP Retry-After: delta-seconds (also fractional) or an HTTP date. None when absent/bad."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        secs = float(value)
        return max(0.0, secs) if secs == secs else None  # NaN guard
    except ValueError:
        pass
    try:
        when = _eu.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds())


# --------------------------------------------------------------------------- patterns

_HEX_PAIR = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")
_DEC_RANGE = re.compile(r"retry with the range\s+(\d+)\s*-\s*(\d+)", re.I)
_N = r"(\d[\d,_]*(?:\.\d+)?[kKmM]?)"

# Log-count caps stated in messages.
_RESULTS_PATTERNS = [
    re.compile(r"more than\s+" + _N + r"\s+(?:results|logs)", re.I),  # Infura
    re.compile(r"max(?:imum)? results\s+" + _N, re.I),  # Erigon
    re.compile(r"cap of\s+" + _N + r"\s+logs", re.I),  # Alchemy
    re.compile(r"(?:logs|results) (?:limit|cap)(?: of)?\s*:?\s*" + _N, re.I),
    re.compile(r"limited to\s+" + _N + r"\s+(?:logs|results)", re.I),
]
# Block-range limits stated in messages.
_RANGE_PATTERNS = [
    re.compile(r"up to a\s+" + _N + r"\s+block range", re.I),  # Alchemy 500-range
    re.compile(r"range\s+\d+\s+exceeds limit of\s+" + _N, re.I),  # Infura -32602
    re.compile(r"limited to a\s+" + _N + r"\s+(?:block )?range", re.I),  # QuickNode
    re.compile(r"block range too large,\s*range:\s*\d+,\s*max:\s*" + _N, re.I),  # Polygon
    re.compile(r"exceed(?:s|ed)? (?:the )?max(?:imum)? block range(?: of)?\s*:?\s*" + _N, re.I),
    re.compile(r"max(?:imum)? block range(?: is| of)?\s*:?\s*" + _N, re.I),
    re.compile(r"block range (?:is )?limited to\s+" + _N, re.I),
    re.compile(r"block range (?:should|must|cannot) (?:not )?(?:exceed|be (?:less|greater) than)\s+" + _N, re.I),
    re.compile(r"ranges? over\s+" + _N + r"\s+blocks", re.I),
]
# Phrases that mean "too large" even without numbers (lowercase).
_TOO_LARGE_PHRASES_RESULTS = (
    "log response size exceeded",
    "response size exceeded",
    "query returned more than",
    "query exceeds max results",
    "exceeds max results",
    "too many results",
    "too many logs",
    "response is too big",
    "response too large",
    "result set too large",
    "returned more than",
)
_TOO_LARGE_PHRASES_RANGE = (
    "block range is too wide",
    "block range too large",
    "block range is too large",
    "range too large",
    "block range should work",
    "block range limit",
    "exceeds limit of",
    "is limited to a",
    "exceed maximum block range",
    "exceeds maximum block range",
    "maximum block range",
    "block range exceeded",
    "too wide",
)
_RATE_PHRASES = (
    "rate limit",
    "rate-limit",
    "ratelimit",
    "request limit reached",
    "too many requests",
    "request count exceeded",
    "requests per second",
    "exceeded its compute units",
    "compute units per second",
    "capacity exceeded",
    "throughput",
    "slow down",
)
_RATE_CODES = {-32005, -32007, -32016, -32029, 429}
_AUTH_PHRASES = (
    "unauthorized",
    "invalid api key",
    "invalid project id",
    "api key",
    "must be authenticated",
    "authentication",
    "forbidden",
    "not whitelisted",
    "not allowed to access",
    "access denied",
    "invalid token",
)
_TRANSIENT_PHRASES = (
    "header not found",
    "unknown block",
    "timeout",
    "timed out",
    "connection reset",
    "connection refused",
    "connection closed",
    "server disconnected",
    "disconnected",
    "eof",
    "internal error",
    "internal server error",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
    "temporarily",
    "try again",
    "busy",
    "overloaded",
    "not synced",
    "syncing",
    "truncated",
    "malformed",
    "unexpected end",
    "payload",
)
_RETRY_IN = re.compile(r"(?:retry|try again)\s+(?:after|in)\s+(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?)?", re.I)


def _first_num(patterns: list[re.Pattern], msg: str) -> int | None:
    for p in patterns:
        m = p.search(msg)
        if m:
            try:
                v = _num(m.group(1))
            except (ValueError, IndexError):
                continue
            if v > 0:
                return v
    return None


def _hexint(v: Any) -> int | None:
    try:
        if isinstance(v, int):
            return v
        if isinstance(v, str):
            return int(v, 16) if v.lower().startswith("0x") else int(v)
    except ValueError:
        return None
    return None


def _too_large(msg: str, low: str, code: int | None, data: Any, status: int | None) -> TooLarge | None:
    results_phrase = any(p in low for p in _TOO_LARGE_PHRASES_RESULTS)
    range_phrase = any(p in low for p in _TOO_LARGE_PHRASES_RANGE)
    if not (results_phrase or range_phrase):
        return None
    # Infura's -32005 is "too large" only when it says "more than N results".
    if code == -32005 and "more than" not in low and not range_phrase:
        return None
    if not results_phrase and any(p in low for p in _RATE_PHRASES) and "range" not in low:
        return None

    suggested: tuple[int, int] | None = None
    m = _HEX_PAIR.search(msg)
    if m:
        suggested = (int(m.group(1), 16), int(m.group(2), 16))
    else:
        m = _DEC_RANGE.search(msg)
        if m:
            suggested = (int(m.group(1)), int(m.group(2)))
    max_results = None
    if isinstance(data, Mapping):  # Infura: data {from, to, limit}
        f, t = _hexint(data.get("from")), _hexint(data.get("to"))
        if suggested is None and f is not None and t is not None:
            suggested = (f, t)
        lim = _hexint(data.get("limit"))
        if lim:
            max_results = lim
    if suggested is not None and suggested[1] < suggested[0]:
        suggested = None

    max_results = max_results or _first_num(_RESULTS_PATTERNS, msg)
    max_range = None
    # Alchemy's size message offers "up to a 2K block range and no limit on the response size"
    # as an *alternative*: that is not a range limit of the cap-based endpoint.
    if not results_phrase or "log response size exceeded" not in low:
        max_range = _first_num(_RANGE_PATTERNS, msg)

    if results_phrase and not (range_phrase and max_range):
        kind = "results"
    elif range_phrase or max_range:
        kind = "range"
    else:
        kind = None
    if "log response size exceeded" in low or "query returned more than" in low:
        kind = "results"
    return TooLarge(
        msg,
        suggested,
        max_range,
        max_results,
        kind=kind,
        code=code,
        http_status=status,
    )


def _retry_after(headers: Any, data: Any, msg: str) -> float | None:
    ra = parse_retry_after(_header(headers, "Retry-After"))
    if ra is not None:
        return ra
    if isinstance(data, Mapping):
        rate = data.get("rate")
        for src in (rate if isinstance(rate, Mapping) else {}, data):
            for key in ("backoff_seconds", "retry_after", "retryAfter", "backoff"):
                v = src.get(key)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    return max(0.0, float(v))
                if isinstance(v, str):
                    try:
                        return max(0.0, float(v))
                    except ValueError:
                        pass
    m = _RETRY_IN.search(msg)
    if m:
        v = float(m.group(1))
        unit = (m.group(2) or "s").lower()
        return v / 1000.0 if unit.startswith("m") else v
    return None


def classify(
    http_status: int | None,
    error: dict | None,
    text: str | None,
    headers: Any = None,
) -> RpcError | None:
    """Classify one failed (or suspicious) exchange; None when there is nothing wrong.

    ``http_status``: the HTTP status, None when no response was received (network error).
    ``error``: the JSON-RPC ``error`` object, when the body parsed and carried one.
    ``text``: the raw body when it did not parse, or the (scrubbed) exception text.
    ``headers``: response headers (for Retry-After), any mapping.
    """
    ok_status = http_status is None or 200 <= http_status < 300
    if error is None and not text and http_status is not None and ok_status:
        return None

    code: int | None = None
    data: Any = None
    msg = ""
    if isinstance(error, Mapping):
        c = error.get("code")
        code = c if isinstance(c, int) and not isinstance(c, bool) else _hexint(c)
        msg = str(error.get("message") or "")
        data = error.get("data")
        if isinstance(data, str) and data and data not in msg:
            msg = f"{msg} ({data})" if msg else data
    elif error is not None:
        msg = str(error)
    if not msg and text:
        msg = str(text)
    msg = _clean(msg, limit=4000)  # parse the whole text; RpcError shortens what it keeps
    low = msg.lower()
    kw = {"code": code, "http_status": http_status}

    # 1. too large (any status: Alchemy's 500-range error comes with HTTP 400)
    tl = _too_large(msg, low, code, data, http_status)
    if tl is not None:
        return tl

    # 2. rate limited
    if (
        http_status == 429
        or code in _RATE_CODES
        or any(p in low for p in _RATE_PHRASES)
        or ("limit" in low and ("exceeded" in low or "reached" in low) and "range" not in low)
    ):
        ra = _retry_after(headers, data, msg)
        label = msg or f"HTTP {http_status}"
        return RateLimited(label, ra, **kw)

    # 3. auth -> fatal
    if http_status in (401, 403) or any(p in low for p in _AUTH_PHRASES):
        return Fatal(msg or f"HTTP {http_status}: not authorised", **kw)

    # 4. method not found / invalid request / invalid params that no split fixes
    if code == -32601 or "method not found" in low or "does not exist/is not available" in low:
        return Fatal(msg or "method not found", **kw)

    # 5. transient
    if http_status is not None and (http_status >= 500 or http_status in (408, 425)):
        return Transient(msg or f"HTTP {http_status}", **kw)
    if any(p in low for p in _TRANSIENT_PHRASES):
        return Transient(msg, **kw)
    if code in (-32603, -32000) or (code is not None and -32099 <= code <= -32001):
        return Transient(msg or f"server error {code}", **kw)

    if code in (-32600, -32602, -32700):
        return Fatal(msg or f"invalid request ({code})", **kw)
    if http_status is not None and 400 <= http_status < 500:
        return Fatal(msg or f"HTTP {http_status}", **kw)
    if error is not None:
        # An unknown JSON-RPC error: retry it a bounded number of times rather than stop a shard.
        return Transient(msg or f"JSON-RPC error {code}", **kw)
    if http_status is None:
        return Transient(msg or "network error", **kw)
    # HTTP 2xx whose body is not a JSON-RPC response (truncated, HTML...)
    return Transient(f"malformed response: {msg}" if msg else "malformed response", **kw)
