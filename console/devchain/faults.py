"""Provider fault profiles: response caps, block-range caps, rate limits and transport faults,
with each provider's exact error code and text.

Why a profile per provider: the engine must classify every one of these (too large / rate
limited / transient / fatal) and use the hints; a devchain that fails the way Alchemy, Infura,
QuickNode, Ankr, Erigon or a Polygon (bor) node fails is how we know it does.

Two rules keep faults honest:
- Caps are limits, not faults: the same request always fails the same way, and the suggested
  range in the message is computed from the real matching logs so it really works (its log
  count is <= the cap, its block span <= the range cap).
- Every other fault follows a seeded schedule keyed by a per-request counter, and is never
  permanent: a request whose previous identical attempt (same method + params, whatever its
  id) was faulted is served without a scheduled fault. So a retry can always succeed.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

ALCHEMY_CAP_TEXT = (
    "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no "
    "limit on the response size, or you can request any block range with a cap of 10K logs in the response. "
    "Based on your parameters and the response size limit, this block range should work: [{frm}, {to}]"
)
ALCHEMY500_TEXT = (
    "You can make eth_getLogs requests with up to a {cap} block range. Based on your parameters, "
    "this block range should work: [{frm}, {to}]"
)
INFURA_CAP_TEXT = "query returned more than 10000 results. Try with this block range [{frm}, {to}]."
INFURA_RANGE_TEXT = "range {n} exceeds limit of {cap}"
QUICKNODE_RANGE_TEXT = "eth_getLogs is limited to a {cap:,} range"
QUICKNODE_RATE_TEXT = "100/second request limit reached - reduce calls per second or upgrade your account at quicknode.com"
ANKR_RANGE_TEXT = "block range is too wide"
ANKR_CAP_TEXT = "query exceeds max results"
ERIGON_CAP_TEXT = "query exceeds max results 20000, retry with the range {frm}-{to}"
POLYGON_RANGE_TEXT = "eth_getLogs block range too large, range: {n}, max: {cap}"
INFURA_RATE_TEXT = "daily request count exceeded, request rate limited"
HEADER_NOT_FOUND_TEXT = "header not found"


@dataclass
class RpcError(Exception):
    """A JSON-RPC error (and the HTTP status a single request carrying it gets)."""

    code: int
    message: str
    data: object = None
    http_status: int = 200
    klass: str = "error"  # stats class: too_large | range | rate_limited | transient | invalid

    def payload(self) -> dict:
        e = {"code": self.code, "message": self.message}
        if self.data is not None:
            e["data"] = self.data
        return e


@dataclass(frozen=True)
class FaultProfile:
    name: str
    cap: int | None = None  # max logs per eth_getLogs response
    cap_style: str | None = None  # alchemy | infura | ankr | erigon
    range_cap: int | None = None  # max blocks per eth_getLogs (to - from + 1)
    range_style: str | None = None  # alchemy500 | infura | quicknode | ankr | polygon
    p_http_429: float = 0.0
    p_rpc_rate: float = 0.0  # JSON-level rate limit
    rpc_rate_style: str = "infura"  # infura (-32005) | quicknode (-32007)
    p_5xx: float = 0.0
    p_drop: float = 0.0
    p_truncate: float = 0.0
    p_slow: float = 0.0
    p_header_not_found: float = 0.0
    bucket_rps: float | None = None  # token bucket (wall clock); None = off
    bucket_burst: float = 0.0
    retry_after: float = 1.0
    slow_seconds: float = 20.0
    # Modern nodes and providers put `blockTimestamp` in every log; older ones do not, and a
    # client must then fetch block headers. Profiles of both kinds keep both paths tested.
    log_timestamps: bool = True
    description: str = ""


PROFILES: dict[str, FaultProfile] = {
    "clean": FaultProfile("clean", description="no faults"),
    "alchemy": FaultProfile("alchemy", cap=10_000, cap_style="alchemy",
                            description="-32602 'Log response size exceeded' over 10K logs, with a range hint"),
    "alchemy500": FaultProfile("alchemy500", range_cap=500, range_style="alchemy500",
                               description="HTTP 400 / -32600 over 500 blocks, with a range hint"),
    "infura": FaultProfile("infura", cap=10_000, cap_style="infura", range_cap=10_000, range_style="infura",
                           log_timestamps=False,
                           description="-32005 over 10000 results (hint + data), -32602 over 10000 blocks"),
    "quicknode": FaultProfile("quicknode", range_cap=10_000, range_style="quicknode", p_rpc_rate=0.03,
                              rpc_rate_style="quicknode",
                              description="-32614 over a 10,000 block range; -32007 request rate limit"),
    "ankr": FaultProfile("ankr", cap=10_000, cap_style="ankr", range_cap=3_000, range_style="ankr",
                         log_timestamps=False,
                         description="-32600 'block range is too wide' over 3000 blocks (no hint); max results"),
    "erigon": FaultProfile("erigon", cap=20_000, cap_style="erigon",
                           description="-32602 over 20000 results with 'retry with the range N-M'"),
    "polygon": FaultProfile("polygon", range_cap=3_500, range_style="polygon", log_timestamps=False,
                            description="bor: 'block range too large, range: N, max: 3500'"),
    "ratelimit": FaultProfile("ratelimit", p_http_429=0.05, p_rpc_rate=0.03, rpc_rate_style="infura",
                              bucket_rps=200.0, bucket_burst=400.0,
                              description="HTTP 429 + Retry-After, token bucket, Infura -32005 backoff_seconds"),
    "flaky": FaultProfile("flaky", p_5xx=0.04, p_drop=0.02, p_truncate=0.02, p_slow=0.005,
                          p_header_not_found=0.02,
                          description="502/503/504, dropped connections, truncated JSON, slow responses, "
                                      "-32000 header not found"),
    "demo": FaultProfile("demo", cap=10_000, cap_style="alchemy", p_http_429=0.01, p_5xx=0.01,
                         description="alchemy cap + a few 429s and 5xx"),
}
PROFILES["hostile"] = replace(
    PROFILES["alchemy"], name="hostile", p_http_429=0.05, p_rpc_rate=0.03, rpc_rate_style="infura",
    bucket_rps=200.0, bucket_burst=400.0, p_5xx=0.04, p_drop=0.02, p_truncate=0.02, p_slow=0.005,
    p_header_not_found=0.02, description="alchemy + ratelimit + flaky",
)


def get_profile(name: str | FaultProfile) -> FaultProfile:
    if isinstance(name, FaultProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown fault profile {name!r} (one of {', '.join(PROFILES)})") from None


def range_error(p: FaultProfile, frm: int, to: int) -> RpcError | None:
    """Block-range cap: independent of the logs (what nodes check first)."""
    if p.range_cap is None:
        return None
    n = to - frm + 1
    if n <= p.range_cap:
        return None
    s = p.range_style
    if s == "alchemy500":
        return RpcError(-32600, ALCHEMY500_TEXT.format(cap=p.range_cap, frm=hex(frm), to=hex(frm + p.range_cap - 1)),
                        http_status=400, klass="range")
    if s == "infura":
        return RpcError(-32602, INFURA_RANGE_TEXT.format(n=n, cap=p.range_cap), klass="range")
    if s == "quicknode":
        return RpcError(-32614, QUICKNODE_RANGE_TEXT.format(cap=p.range_cap), http_status=413, klass="range")
    if s == "ankr":
        return RpcError(-32600, ANKR_RANGE_TEXT, klass="range")
    if s == "polygon":
        return RpcError(-32000, POLYGON_RANGE_TEXT.format(n=n, cap=p.range_cap), klass="range")
    raise AssertionError(s)


def cap_error(p: FaultProfile, frm: int, to: int, count: int, nth_block) -> RpcError | None:
    """Response-size cap. `nth_block(i)` = block of the i-th (0-based) matching log."""
    if p.cap is None or count <= p.cap:
        return None
    # largest `hi` with count(frm..hi) <= cap: just before the block of the (cap+1)-th log
    hi = max(frm, nth_block(p.cap) - 1)
    s = p.cap_style
    if s == "alchemy":
        return RpcError(-32602, ALCHEMY_CAP_TEXT.format(frm=hex(frm), to=hex(hi)), klass="too_large")
    if s == "infura":
        return RpcError(-32005, INFURA_CAP_TEXT.format(frm=hex(frm), to=hex(hi)),
                        data={"from": hex(frm), "to": hex(hi), "limit": p.cap}, klass="too_large")
    if s == "ankr":
        return RpcError(-32600, ANKR_CAP_TEXT, klass="too_large")
    if s == "erigon":
        return RpcError(-32602, ERIGON_CAP_TEXT.format(frm=frm, to=hi), klass="too_large")
    raise AssertionError(s)


def rpc_rate_error(p: FaultProfile) -> RpcError:
    if p.rpc_rate_style == "quicknode":
        return RpcError(-32007, QUICKNODE_RATE_TEXT, http_status=429, klass="rate_limited")
    return RpcError(-32005, INFURA_RATE_TEXT,
                    data={"see": "https://infura.io/dashboard",
                          "rate": {"allowed_rps": 10, "backoff_seconds": p.retry_after, "current_rps": 13.4}},
                    klass="rate_limited")


def _u01(seed: int, n: int, what: str) -> float:
    h = hashlib.blake2b(f"{seed}:{n}:{what}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


@dataclass
class FaultSchedule:
    """Seeded per-request fault decisions, with the never-twice-in-a-row rule."""

    profile: FaultProfile
    seed: int = 1
    n: int = 0
    _faulted: "OrderedDict[bytes, bool]" = field(default_factory=OrderedDict)
    _tokens: float = -1.0
    _t: float = 0.0

    def next_request(self, fingerprint: bytes) -> "Decision":
        """Decide the scheduled faults of the next HTTP request."""
        self.n += 1
        p = self.profile
        exempt = self._faulted.pop(fingerprint, False)
        dec = Decision(self.n, exempt)
        if p.bucket_rps and not self._take_token():
            dec.http = "429"
            dec.bucket = True
        if not exempt:
            n, s = self.n, self.seed
            if dec.http is None:
                for kind, prob in (("429", p.p_http_429), ("5xx", p.p_5xx), ("drop", p.p_drop),
                                   ("truncate", p.p_truncate), ("slow", p.p_slow)):
                    if prob and _u01(s, n, kind) < prob:
                        dec.http = kind
                        break
            if dec.http is None:
                if p.p_rpc_rate and _u01(s, n, "rpc_rate") < p.p_rpc_rate:
                    dec.rpc = "rate"
                elif p.p_header_not_found and _u01(s, n, "hnf") < p.p_header_not_found:
                    dec.rpc = "header_not_found"
            dec.status_choice = int(_u01(s, n, "status") * 3)
        return dec

    def mark_faulted(self, fingerprint: bytes) -> None:
        self._faulted[fingerprint] = True
        while len(self._faulted) > 50_000:
            self._faulted.popitem(last=False)

    def _take_token(self) -> bool:
        p = self.profile
        now = time.monotonic()
        if self._tokens < 0:
            self._tokens, self._t = p.bucket_burst, now
        self._tokens = min(p.bucket_burst, self._tokens + (now - self._t) * (p.bucket_rps or 0))
        self._t = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass
class Decision:
    n: int
    exempt: bool
    http: str | None = None  # 429 | 5xx | drop | truncate | slow
    rpc: str | None = None  # rate | header_not_found (applied to the first eligible call)
    bucket: bool = False
    status_choice: int = 0

    @property
    def faulted(self) -> bool:
        return self.http is not None or self.rpc is not None
