"""An eth_getLogs reply as the provider sent it, parsed straight from the body into typed structs.

Why not orjson into dicts, as every other reply is parsed: this is the ingest hot path (every log
of the backfill goes through it). msgspec builds one small struct per log with only the fields the
decoders read (the rest of each log is skipped, not materialised), checks their JSON types on the
way, and the structs are not tracked by the cyclic garbage collector (`gc=False`: they hold only
strings, so no cycle can go through them), where a response's thousands of dicts kept triggering
collections. bench/hotpath.py, 20,000-log responses: parse 2.6 -> 1.2 µs per log (ERC-1155 3.0 ->
1.5), parse and decode 5.2 -> 3.9 µs (6.6 -> 5.7); a parsed response of USDC transfers 29 -> 20 MB
(tracemalloc).

What is checked here is the shape (a field missing or of the wrong JSON type rejects the whole
reply with InvalidResponse, so the range is fetched again); what the values mean (topics, data,
block range, duplicates, ...) is console/engine/decode.py's to check.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import InvalidResponse

__all__ = ["RawLog", "LogsReply", "read_logs_reply"]


class RawLog(msgspec.Struct, gc=False):
    """One log of an eth_getLogs result (hex strings as sent; other fields are ignored)."""

    address: str
    topics: list[str]
    data: str
    blockNumber: str
    transactionHash: str
    logIndex: str
    removed: bool | None = None
    blockTimestamp: str | None = None  # sent by Erigon, Alchemy, Infura; else a header fetch


class LogsReply(msgspec.Struct, gc=False):
    """The JSON-RPC envelope: `result` for a success, `error` (as sent) for a failure."""

    result: list[RawLog] | None = None
    error: Any = None


_DECODER = msgspec.json.Decoder(LogsReply)


def read_logs_reply(raw: bytes) -> LogsReply | None:
    """The typed reply; None when `raw` is not JSON at all (a truncated or non-JSON body: the
    transport's error to classify); InvalidResponse when it is JSON of the wrong shape."""
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError as e:  # a subclass of DecodeError: first
        raise InvalidResponse(f"eth_getLogs reply of the wrong shape: {e}") from None
    except msgspec.DecodeError:
        return None
