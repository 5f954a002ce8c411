"""Log -> column decoding (the ingest hot path).

Input: the eth_getLogs result as typed logs (console/engine/wire.py: every field present, of the
right JSON type). Output: column-oriented dicts whose keys are exactly the ClickHouse columns of
DESIGN §5.2 (minus created_at, which the writer adds). Values and token ids are Python ints
(UInt256), addresses and hashes lowercase 0x-hex, block_time unix seconds.

ABI decoding is done by hand with hex slicing (``int(data[2+64*i : 66+64*i], 16)``): every field
here is a 32-byte word or a dynamic uint256[], and this is ~10x faster than eth_abi (see
bench/hotpath.py). Every log is validated; one bad log rejects the whole response with
InvalidResponse (the caller re-fetches the sub-range; nothing is half-stored):
wrong topic count or topic0, short/odd/non-hex data, bad ABI offsets, TransferBatch ids/values
length mismatch, block outside [from_block, to_block], address not asked for, ``removed: true``,
duplicate (tx_hash, log_index).
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Callable, Iterable

from console.protocol import (
    TOPIC_CONDITION_RESOLUTION,
    TOPIC_TOKEN_REGISTERED,
    TOPIC_TRANSFER,
    TOPIC_TRANSFER_BATCH,
    TOPIC_TRANSFER_SINGLE,
)

from .errors import InvalidResponse
from .wire import RawLog

__all__ = [
    "ERC20_COLUMNS",
    "ERC1155_COLUMNS",
    "RESOLUTION_COLUMNS",
    "REGISTRATION_COLUMNS",
    "COLUMNS",
    "DECODERS",
    "decode_erc20",
    "decode_erc1155",
    "decode_resolutions",
    "decode_registrations",
    "decode",
    "empty_columns",
    "missing_timestamps",
    "row_count",
]

ERC20_COLUMNS = (
    "token", "from_address", "to_address", "value", "tx_hash", "log_index",
    "block_number", "block_time", "day_idx",
)  # fmt: skip
ERC1155_COLUMNS = (
    "contract", "operator", "from_address", "to_address", "token_id", "value", "tx_hash",
    "log_index", "batch_index", "block_number", "block_time", "day_idx",
)  # fmt: skip
RESOLUTION_COLUMNS = (
    "contract", "condition_id", "oracle", "question_id", "outcome_slot_count",
    "payout_numerators", "tx_hash", "log_index", "block_number", "block_time", "day_idx",
)  # fmt: skip
REGISTRATION_COLUMNS = (
    "contract", "token0", "token1", "condition_id", "tx_hash", "log_index",
    "block_number", "block_time", "day_idx",
)  # fmt: skip
COLUMNS = {
    "erc20": ERC20_COLUMNS,
    "erc1155": ERC1155_COLUMNS,
    "resolution": RESOLUTION_COLUMNS,
    "registration": REGISTRATION_COLUMNS,
}

_PAD = "0x000000000000000000000000"  # first 26 chars of a topic holding an address
_HEXCHARS = frozenset("0123456789abcdefABCDEF")


def empty_columns(kind: str) -> dict[str, list]:
    return {c: [] for c in COLUMNS[kind]}


def row_count(columns: dict[str, list]) -> int:
    for v in columns.values():
        return len(v)
    return 0


def missing_timestamps(logs: Iterable[RawLog]) -> set[int]:
    """Distinct block numbers of logs that carry no ``blockTimestamp`` (fetch them first)."""
    out: set[int] = set()
    for log in logs:
        if not log.blockTimestamp:
            try:
                out.add(int(log.blockNumber, 16))
            except ValueError:
                raise InvalidResponse("log without a valid blockNumber") from None
    return out


def _malformed(e: Exception, i: int, log: Any) -> InvalidResponse:
    """The InvalidResponse for a Python error raised while reading log `i` (the reply's shape
    is checked already, console/engine/wire.py: this is a value that does not read)."""
    if isinstance(e, KeyError) and e.args and isinstance(e.args[0], int):
        return _bad(i, log, f"no timestamp for block {e.args[0]}")
    return _bad(i, log, f"malformed: {type(e).__name__}: {e}")


def _bad(i: int, log: Any, why: str) -> InvalidResponse:
    where = ""
    if isinstance(log, RawLog):
        where = f" (tx {log.transactionHash[:20]}…, logIndex {log.logIndex})"
    return InvalidResponse(f"log #{i}{where}: {why}")


def _lower_set(addresses: Iterable[str]) -> set[str]:
    return {a.lower() for a in addresses}


def _addr(topic: str) -> str:
    # caller checked length 66 and padding
    return "0x" + topic[26:].lower()


def _check_hex(s: str) -> bool:
    return _HEXCHARS.issuperset(s[2:])


def decode_erc20(
    logs: list[RawLog],
    *,
    day_idx: int,
    from_block: int,
    to_block: int,
    addresses: Iterable[str],
    timestamps: dict[int, int] | None = None,
) -> dict[str, list]:
    """ERC20 Transfer(address indexed from, address indexed to, uint256 value)."""
    addrs = addresses if isinstance(addresses, (set, frozenset)) else _lower_set(addresses)
    ts_map = timestamps or {}
    token: list = []
    frm: list = []
    to: list = []
    value: list = []
    txh: list = []
    lidx: list = []
    bnum: list = []
    btime: list = []
    # bound methods: this loop runs for every log of the backfill
    a_token, a_frm, a_to, a_value = token.append, frm.append, to.append, value.append
    a_tx, a_li, a_bn, a_bt = txh.append, lidx.append, bnum.append, btime.append
    pad = _PAD
    topic0 = TOPIC_TRANSFER
    i = -1
    log: Any = None
    try:
        for i, log in enumerate(logs):
            topics = log.topics
            if len(topics) != 3 or topics[0] != topic0:
                raise _bad(i, log, f"not an ERC20 Transfer ({len(topics)} topics)")
            _, t1, t2 = topics
            data = log.data
            if len(t1) != 66 or len(t2) != 66 or len(data) != 66 or not t1.startswith(pad) or not t2.startswith(pad):
                raise _bad(i, log, "malformed topic or data (want 3 topics of 32 bytes, 32 bytes of data)")
            if log.removed:
                raise _bad(i, log, "removed (reorged) log")
            a = log.address.lower()
            if a not in addrs:
                raise _bad(i, log, f"address {a} was not asked for")
            bn = int(log.blockNumber, 16)
            if bn < from_block or bn > to_block:
                raise _bad(i, log, f"block {bn} outside [{from_block}, {to_block}]")
            bts = log.blockTimestamp
            a_bt(int(bts, 16) if bts else ts_map[bn])
            a_token(a)
            a_frm("0x" + t1[26:].lower())
            a_to("0x" + t2[26:].lower())
            a_value(int(data, 16))
            a_tx(log.transactionHash.lower())
            a_li(int(log.logIndex, 16))
            a_bn(bn)
    except InvalidResponse:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise _malformed(e, i, log) from None
    _check_unique(txh, lidx, logs)
    _check_tx_hashes(txh, logs)
    return {
        "token": token,
        "from_address": frm,
        "to_address": to,
        "value": value,
        "tx_hash": txh,
        "log_index": lidx,
        "block_number": bnum,
        "block_time": btime,
        "day_idx": [day_idx] * len(txh),
    }


def _check_unique(txh: list[str], lidx: list[int], logs: list[RawLog]) -> None:
    """No (tx_hash, log_index) twice in one response (one set build, C speed)."""
    if len(set(zip(txh, lidx))) != len(txh):
        seen: set = set()
        for i, key in enumerate(zip(txh, lidx)):
            if key in seen:
                raise _bad(i, logs[i] if i < len(logs) else None, "duplicate (tx_hash, log_index)")
            seen.add(key)


def _check_tx_hashes(txh: list[str], logs: list[RawLog]) -> None:
    """Every tx hash is 0x + 64 hex chars (done once per distinct hash, cheap)."""
    uniq = set(txh)
    try:
        if set(map(len, uniq)) - {66} or not all(map(str.startswith, uniq, repeat("0x"))):
            raise ValueError
        bytes.fromhex("".join([h[2:] for h in uniq]))
    except ValueError:
        for h in uniq:
            if len(h) != 66 or not _check_hex(h):
                raise InvalidResponse(f"malformed transactionHash {h[:20]}…") from None


def _words(data: str, i: int, log: Any) -> int:
    """Number of 32-byte words in ``data`` (validated: 0x prefix, even, whole words, hex)."""
    n = len(data) - 2
    if not data.startswith("0x") or n % 64:
        raise _bad(i, log, f"data is not whole 32-byte words ({len(data)} chars)")
    return n // 64


def _uint_array(data: str, nwords: int, head_word: int, i: int, log: Any) -> list[int]:
    """Decode a dynamic uint256[] whose offset is in head word ``head_word``."""
    off = int(data[2 + 64 * head_word : 66 + 64 * head_word], 16)
    if off % 32:
        raise _bad(i, log, "array offset is not word-aligned")
    w = off // 32
    if w >= nwords:
        raise _bad(i, log, "array offset beyond data")
    n = int(data[2 + 64 * w : 66 + 64 * w], 16)
    if w + 1 + n > nwords:
        raise _bad(i, log, f"array of {n} items does not fit in data")
    base = 2 + 64 * (w + 1)
    return [int(data[base + 64 * k : base + 64 * k + 64], 16) for k in range(n)]


def decode_erc1155(
    logs: list[RawLog],
    *,
    day_idx: int,
    from_block: int,
    to_block: int,
    addresses: Iterable[str],
    timestamps: dict[int, int] | None = None,
) -> dict[str, list]:
    """ERC1155 TransferSingle / TransferBatch(operator, from, to indexed; id(s), value(s)).

    A TransferBatch gives one row per (id, value) with batch_index 0..n-1; TransferSingle 0.
    """
    addrs = addresses if isinstance(addresses, (set, frozenset)) else _lower_set(addresses)
    ts_map = timestamps or {}
    contract: list = []
    operator: list = []
    frm: list = []
    to: list = []
    token_id: list = []
    value: list = []
    txh: list = []
    lidx: list = []
    bidx: list = []
    bnum: list = []
    btime: list = []
    keys: list = []
    a_key = keys.append
    i = -1
    log: Any = None
    try:
        for i, log in enumerate(logs):
            topics = log.topics
            if len(topics) != 4:
                raise _bad(i, log, f"ERC1155 transfer needs 4 topics, got {len(topics)}")
            t0 = topics[0]
            t1 = topics[1]
            t2 = topics[2]
            t3 = topics[3]
            if (
                len(t1) != 66
                or len(t2) != 66
                or len(t3) != 66
                or not t1.startswith(_PAD)
                or not t2.startswith(_PAD)
                or not t3.startswith(_PAD)
            ):
                raise _bad(i, log, "malformed address topic")
            data = log.data
            if log.removed:
                raise _bad(i, log, "removed (reorged) log")
            a = log.address.lower()
            if a not in addrs:
                raise _bad(i, log, f"address {a} was not asked for")
            bn = int(log.blockNumber, 16)
            if bn < from_block or bn > to_block:
                raise _bad(i, log, f"block {bn} outside [{from_block}, {to_block}]")
            tx = log.transactionHash.lower()
            li = int(log.logIndex, 16)
            a_key((tx, li))
            bts = log.blockTimestamp
            t = int(bts, 16) if bts else ts_map[bn]
            op = "0x" + t1[26:].lower()
            fa = "0x" + t2[26:].lower()
            ta = "0x" + t3[26:].lower()
            if t0 == TOPIC_TRANSFER_SINGLE:
                if len(data) != 130:
                    raise _bad(i, log, f"TransferSingle data must be 2 words, got {len(data)} chars")
                contract.append(a)
                operator.append(op)
                frm.append(fa)
                to.append(ta)
                token_id.append(int(data[2:66], 16))
                value.append(int(data[66:130], 16))
                txh.append(tx)
                lidx.append(li)
                bidx.append(0)
                bnum.append(bn)
                btime.append(t)
            elif t0 == TOPIC_TRANSFER_BATCH:
                nw = _words(data, i, log)
                if nw < 4:
                    raise _bad(i, log, "TransferBatch data too short")
                ids = _uint_array(data, nw, 0, i, log)
                vals = _uint_array(data, nw, 1, i, log)
                n = len(ids)
                if n != len(vals):
                    raise _bad(i, log, f"TransferBatch ids/values length mismatch ({n} != {len(vals)})")
                contract.extend([a] * n)
                operator.extend([op] * n)
                frm.extend([fa] * n)
                to.extend([ta] * n)
                token_id.extend(ids)
                value.extend(vals)
                txh.extend([tx] * n)
                lidx.extend([li] * n)
                bidx.extend(range(n))
                bnum.extend([bn] * n)
                btime.extend([t] * n)
            else:
                raise _bad(i, log, f"unexpected topic0 {str(t0)[:18]}…")
    except InvalidResponse:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise _malformed(e, i, log) from None
    if len(set(keys)) != len(keys):
        _check_unique([k[0] for k in keys], [k[1] for k in keys], logs)
    _check_tx_hashes(txh, logs)
    return {
        "contract": contract,
        "operator": operator,
        "from_address": frm,
        "to_address": to,
        "token_id": token_id,
        "value": value,
        "tx_hash": txh,
        "log_index": lidx,
        "batch_index": bidx,
        "block_number": bnum,
        "block_time": btime,
        "day_idx": [day_idx] * len(txh),
    }


def _meta(i: int, log: RawLog, seen: set, addrs: set, from_block: int, to_block: int, ts_map: dict) -> tuple:
    """Shared checks for the low-volume streams; returns (address, tx, log_index, block, time)."""
    if log.removed:
        raise _bad(i, log, "removed (reorged) log")
    a = log.address.lower()
    if a not in addrs:
        raise _bad(i, log, f"address {a} was not asked for")
    bn = int(log.blockNumber, 16)
    if bn < from_block or bn > to_block:
        raise _bad(i, log, f"block {bn} outside [{from_block}, {to_block}]")
    tx = log.transactionHash.lower()
    li = int(log.logIndex, 16)
    key = (tx, li)
    if key in seen:
        raise _bad(i, log, "duplicate (tx_hash, log_index)")
    seen.add(key)
    bts = log.blockTimestamp
    t = int(bts, 16) if bts else ts_map[bn]
    return a, tx, li, bn, t


def _topic_word(topic: Any, i: int, log: Any) -> str:
    if not isinstance(topic, str) or len(topic) != 66 or not topic.startswith("0x") or not _check_hex(topic):
        raise _bad(i, log, "malformed topic")
    return topic.lower()


def decode_resolutions(
    logs: list[RawLog],
    *,
    day_idx: int,
    from_block: int,
    to_block: int,
    addresses: Iterable[str],
    timestamps: dict[int, int] | None = None,
) -> dict[str, list]:
    """CTF ConditionResolution(bytes32 indexed conditionId, address indexed oracle,
    bytes32 indexed questionId, uint outcomeSlotCount, uint[] payoutNumerators)."""
    addrs = addresses if isinstance(addresses, (set, frozenset)) else _lower_set(addresses)
    ts_map = timestamps or {}
    cols = empty_columns("resolution")
    seen: set = set()
    i = -1
    log: Any = None
    try:
        for i, log in enumerate(logs):
            topics = log.topics
            if len(topics) != 4 or topics[0] != TOPIC_CONDITION_RESOLUTION:
                raise _bad(i, log, "not a ConditionResolution")
            cond = _topic_word(topics[1], i, log)
            oracle_t = _topic_word(topics[2], i, log)
            if not oracle_t.startswith(_PAD):
                raise _bad(i, log, "malformed oracle topic")
            qid = _topic_word(topics[3], i, log)
            data = log.data
            nw = _words(data, i, log)
            if nw < 3:
                raise _bad(i, log, "ConditionResolution data too short")
            slots = int(data[2:66], 16)
            payouts = _uint_array(data, nw, 1, i, log)
            if len(payouts) != slots:
                raise _bad(i, log, f"{len(payouts)} payout numerators for {slots} outcome slots")
            a, tx, li, bn, t = _meta(i, log, seen, addrs, from_block, to_block, ts_map)
            cols["contract"].append(a)
            cols["condition_id"].append(cond)
            cols["oracle"].append("0x" + oracle_t[26:])
            cols["question_id"].append(qid)
            cols["outcome_slot_count"].append(slots)
            cols["payout_numerators"].append(payouts)
            cols["tx_hash"].append(tx)
            cols["log_index"].append(li)
            cols["block_number"].append(bn)
            cols["block_time"].append(t)
            cols["day_idx"].append(day_idx)
    except InvalidResponse:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise _malformed(e, i, log) from None
    _check_tx_hashes(cols["tx_hash"], logs)
    return cols


def decode_registrations(
    logs: list[RawLog],
    *,
    day_idx: int,
    from_block: int,
    to_block: int,
    addresses: Iterable[str],
    timestamps: dict[int, int] | None = None,
) -> dict[str, list]:
    """CTF Exchange TokenRegistered(uint256 indexed token0, uint256 indexed token1,
    bytes32 indexed conditionId)."""
    addrs = addresses if isinstance(addresses, (set, frozenset)) else _lower_set(addresses)
    ts_map = timestamps or {}
    cols = empty_columns("registration")
    seen: set = set()
    i = -1
    log: Any = None
    try:
        for i, log in enumerate(logs):
            topics = log.topics
            if len(topics) != 4 or topics[0] != TOPIC_TOKEN_REGISTERED:
                raise _bad(i, log, "not a TokenRegistered")
            t0 = _topic_word(topics[1], i, log)
            t1 = _topic_word(topics[2], i, log)
            cond = _topic_word(topics[3], i, log)
            data = log.data
            if data not in ("0x", "0x0", ""):
                raise _bad(i, log, "TokenRegistered carries no data")
            a, tx, li, bn, t = _meta(i, log, seen, addrs, from_block, to_block, ts_map)
            cols["contract"].append(a)
            cols["token0"].append(int(t0, 16))
            cols["token1"].append(int(t1, 16))
            cols["condition_id"].append(cond)
            cols["tx_hash"].append(tx)
            cols["log_index"].append(li)
            cols["block_number"].append(bn)
            cols["block_time"].append(t)
            cols["day_idx"].append(day_idx)
    except InvalidResponse:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise _malformed(e, i, log) from None
    _check_tx_hashes(cols["tx_hash"], logs)
    return cols


DECODERS: dict[str, Callable[..., dict[str, list]]] = {
    "erc20": decode_erc20,
    "erc1155": decode_erc1155,
    "resolution": decode_resolutions,
    "registration": decode_registrations,
}


def decode(kind: str, logs: list[RawLog], **kw: Any) -> dict[str, list]:
    """Dispatch on a protocol Stream.kind ("erc20" | "erc1155" | "resolution" | "registration")."""
    return DECODERS[kind](logs, **kw)
