"""Hand-rolled ABI encoding of the few event shapes the devchain emits, plus noise topics.

Why not eth_abi: generation emits hundreds of thousands of logs and the shapes are fixed
(uint256 words, uint256[] arrays, one bool); string formatting is ~20x faster and keeps the
module import-light. tests/devchain checks these encoders against eth_abi.
"""

from __future__ import annotations

from console.protocol import (  # noqa: F401  (re-exported for the generator modules)
    TOPIC_APPROVAL,
    TOPIC_APPROVAL_FOR_ALL,
    TOPIC_CONDITION_RESOLUTION,
    TOPIC_TOKEN_REGISTERED,
    TOPIC_TRANSFER,
    TOPIC_TRANSFER_BATCH,
    TOPIC_TRANSFER_SINGLE,
    ZERO_ADDRESS,
)

# keccak256 of other real event signatures: noise that shares contracts with the real streams.
TOPIC_ORDER_FILLED = "0xd0a08e8c493f9c94f29311604c9de1b4e8c8d4c06bd0c789af57f2d65bfec0f6"
TOPIC_ORDERS_MATCHED = "0x63bf4d16b7fa898ef4c4b2b6d90fd201e9c56313b65638af6088d149d2ce956c"
TOPIC_POSITION_SPLIT = "0x2e6bb91f8cbcda0c93623c54d0403a43514fabc40084ec96b6d5379a74786298"
TOPIC_POSITIONS_MERGE = "0x6f13ca62553fcc2bcd2372180a43949c1e4cebba603901ede2f4e14f36b282ca"
TOPIC_PAYOUT_REDEMPTION = "0x2682012a4a4f1973119f1c9b90745d1bd91fa2bab387344f044cb3586864d18d"
TOPIC_CONDITION_PREPARATION = "0xab3760c3bd2bb38b5bcf54dc79802ed67338b4cf29f3054ded67ed24661e4177"
TOPIC_SWAP_V3 = "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
TOPIC_SYNC = "0x1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"
TOPIC_DEPOSIT = "0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c"
TOPIC_LOG_FEE_TRANSFER = "0x4dfe1bbbcf077ddc3e01291eea2d5c70c2b422b415d95645b9adcfd678cb1d63"

NOISE_SIGNATURES = {
    TOPIC_ORDER_FILLED: "OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)",
    TOPIC_ORDERS_MATCHED: "OrdersMatched(bytes32,address,uint256,uint256,uint256,uint256)",
    TOPIC_POSITION_SPLIT: "PositionSplit(address,address,bytes32,bytes32,uint256[],uint256)",
    TOPIC_POSITIONS_MERGE: "PositionsMerge(address,address,bytes32,bytes32,uint256[],uint256)",
    TOPIC_PAYOUT_REDEMPTION: "PayoutRedemption(address,address,bytes32,bytes32,uint256[],uint256)",
    TOPIC_CONDITION_PREPARATION: "ConditionPreparation(bytes32,address,bytes32,uint256)",
    TOPIC_SWAP_V3: "Swap(address,address,int256,int256,uint160,uint128,int24)",
    TOPIC_SYNC: "Sync(uint112,uint112)",
    TOPIC_DEPOSIT: "Deposit(address,uint256)",
    TOPIC_LOG_FEE_TRANSFER: "LogFeeTransfer(address,address,address,uint256,uint256,uint256,uint256,uint256)",
}

ZERO_TOPIC = "0x" + "0" * 64


_FMTS = ["0x" + "%064x" * n for n in range(12)]


def word(v: int) -> str:
    """One 32-byte word, no 0x."""
    return "%064x" % v


def uint_topic(v: int) -> str:
    return "0x%064x" % v


_ADDR_TOPICS: dict[str, str] = {}


def addr_topic(a: str) -> str:
    """An address as a topic; one shared string per address (millions of logs reuse a few)."""
    t = _ADDR_TOPICS.get(a)
    if t is None:
        t = _ADDR_TOPICS[a] = "0x000000000000000000000000" + a[2:]
        if len(_ADDR_TOPICS) > 2_000_000:  # pragma: no cover - bound the cache on huge worlds
            _ADDR_TOPICS.clear()
    return t


def data_words(*vals: int) -> str:
    return _FMTS[len(vals)] % vals


def data_uint_arrays(*arrays: list[int]) -> str:
    """ABI encoding of a tuple of uint256[] (dynamic arrays only)."""
    head = []
    tail = []
    offset = 32 * len(arrays)
    for arr in arrays:
        head.append(word(offset))
        tail.append(word(len(arr)) + "".join(word(v) for v in arr))
        offset += 32 * (1 + len(arr))
    return "0x" + "".join(head) + "".join(tail)


def data_resolution(outcome_slot_count: int, payouts: list[int]) -> str:
    """(uint256 outcomeSlotCount, uint256[] payoutNumerators)."""
    return "0x" + word(outcome_slot_count) + word(64) + word(len(payouts)) + "".join(word(p) for p in payouts)


def decode_words(data: str) -> list[int]:
    d = data[2:]
    return [int(d[i : i + 64], 16) for i in range(0, len(d), 64)]


def decode_uint_arrays(data: str, count: int) -> list[list[int]]:
    w = decode_words(data)
    out = []
    for k in range(count):
        off = w[k] // 32
        n = w[off]
        out.append(w[off + 1 : off + 1 + n])
    return out


def topic_address(topic: str) -> str:
    return "0x" + topic[-40:]
