"""Decoder vectors from REAL Polygon logs, plus malformed-response cases.

Sources of the real logs (copied verbatim, only re-wrapped):
- USDC_E_TRANSFER, CTF_TRANSFER_SINGLE, CTF_TRANSFER_BATCH_2, CONDITION_RESOLUTION: fixtures of a
  public Polymarket tool's test suite (Rust), described there as "REAL Polygon mainnet log[s],
  captured verbatim" (txs 0xe1fa9d91…, 0xc6c3f62a…, 0x84b7768d…). Two of them carry no
  ``logIndex`` in that fixture: we add one (marked ADDED below); nothing else is changed.
- CTF_TRANSFER_BATCH: the Polygon transaction receipt printed in Alchemy's
  eth_getTransactionReceipt documentation (tx 0x9ee98915…, block 0xf8ff26 = 16,318,246), a CTF
  TransferBatch burning two position ids (a merge).

How the expected values were checked by hand (besides the independent eth_abi cross-check in
``test_cross_check_with_eth_abi``):
- addresses: the last 40 hex digits of each 32-byte topic, read off the topic strings;
- 0x4d1088 = 4·16^5 + 13·16^4 + 1·16^3 + 0·16^2 + 8·16 + 8 = 4194304+851968+4096+128+8
  = 5,050,504 (5.050504 USDC.e at 6 decimals; the source fixture's comment says 5.050504 USDC);
- 0x67d109f = 6·16^6 + 7·16^5 + 13·16^4 + 1·16^3 + 9·16 + 15 = 100663296+7340032+851968+4096+144+15
  = 108,859,551;  0x4c4b40 = 4·16^5 + 12·16^4 + 4·16^3 + 11·16^2 + 4·16 = 5,000,000 (5.0 shares,
  as the source fixture says);
- TransferBatch data: word0 = 0x40 (ids at byte 64 = word 2), word1 = 0xa0 (values at byte 160 =
  word 5), word2 = 2 ids, words 3-4 the ids, word5 = 2 values, words 6-7 the values;
- the 256-bit token id 0x47212f79…f664 = 32172845847072308101858152476368078090585804255392742427414441920393186506340
  is the decimal the source fixture asserts for the same word (its test
  u256_word_decodes_to_the_decimal_token_id_spelling); the others are int(word, 16) and
  cross-checked with eth_abi;
- log_index 0x288 = 2·256 + 8·16 + 8 = 648; 0x63 = 99; 0x258 = 600; blocks 0x52f9360 = 87,004,000
  (the source asserts 87_004_000), 0xf8ff26 = 15·16^5+8·16^4+15·16^3+15·16^2+2·16+6 = 16,318,246;
- block_time 0x6a0955e4 = 1,778,996,708 (2026-05-17 05:45:08Z), the provider's blockTimestamp field.
"""

from __future__ import annotations

import copy

import orjson
import pytest

from console.engine import decode as decoding
from console.engine.decode import (
    ERC20_COLUMNS,
    ERC1155_COLUMNS,
    REGISTRATION_COLUMNS,
    RESOLUTION_COLUMNS,
)
from console.engine.errors import InvalidResponse
from console.engine.wire import read_logs_reply
from console.protocol import TOPIC_TOKEN_REGISTERED


def _as_sent(logs):
    """The logs as the engine gets them: a reply body, parsed by console/engine/wire.py (so a
    log of the wrong shape fails there, as it would in a run)."""
    return read_logs_reply(orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": logs})).result


def _from_reply(fn):
    """`fn` (a decoder) fed as in a run: the test's dict logs go through the wire first."""
    def run(*args, **kw):
        *head, logs = args
        return fn(*head, _as_sent(logs), **kw)

    return run


decode = _from_reply(decoding.decode)
decode_erc20 = _from_reply(decoding.decode_erc20)
decode_erc1155 = _from_reply(decoding.decode_erc1155)
decode_resolutions = _from_reply(decoding.decode_resolutions)
decode_registrations = _from_reply(decoding.decode_registrations)
missing_timestamps = _from_reply(decoding.missing_timestamps)

USDC_E = "0x2791bca1f2de4661ed88a30c99a7a9449aa84174"
CTF = "0x4d97dcd97ec945f40cf65f87097ace5ea0476045"
EXCHANGE = "0x4bfb41d5b3570defd03c39a9a4d8de6bd8b8982e"

USDC_E_TRANSFER = {
    "address": "0x2791bca1f2de4661ed88a30c99a7a9449aa84174",
    "topics": [
        "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
        "0x0000000000000000000000004d97dcd97ec945f40cf65f87097ace5ea0476045",
        "0x0000000000000000000000006c7e2de5b9d1565793f3757ab568b973413c6816",
    ],
    "data": "0x00000000000000000000000000000000000000000000000000000000004d1088",
    "blockNumber": "0x52f9360",
    "transactionHash": "0xe1fa9d91dd04fa508bb1d674194b4ece3635ff0b41cf71863d55529667bc48c7",
    "transactionIndex": "0x49",
    "blockHash": "0xfe5dcbc7d7e72591cef4b5e98a5d36033f7bdf08ace1ff609d39bf2270e0da1e",
    "blockTimestamp": "0x6a0955e4",
    "logIndex": "0x288",
    "removed": False,
}

CTF_TRANSFER_BATCH = {  # Alchemy docs receipt, Polygon tx 0x9ee98915…
    "address": "0x4d97dcd97ec945f40cf65f87097ace5ea0476045",
    "topics": [
        "0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb",
        "0x000000000000000000000000cf5cea15e49b33b70a0bef2d42a46425c54c80a1",
        "0x000000000000000000000000cf5cea15e49b33b70a0bef2d42a46425c54c80a1",
        "0x0000000000000000000000000000000000000000000000000000000000000000",
    ],
    "data": "0x000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000002cb4e96cda2b16481b25e3d2b2cab2bd5c74e15de2495d5f78aa3b3fab67f94b87815b4e593d58ca91f171be3dd89ee2005a61df0a00445b8411dda6564c36ed0000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000067d109f00000000000000000000000000000000000000000000000000000000067d109f",
    "blockNumber": "0xf8ff26",
    "transactionHash": "0x9ee9891518b06f4b5bf76a4bef4ba6d93e8d38a17b7aaad492f5555865da7dbb",
    "transactionIndex": "0xc",
    "blockHash": "0x6357724a8ccd4dc6f175267395466c005be8ca70f1a67d2232774e8b0fb968ae",
    "logIndex": "0x63",
    "removed": False,
}

CTF_TRANSFER_BATCH_2 = {  # tx 0xc6c3f62a…, values [5.0, 0.0]
    "address": "0x4d97dcd97ec945f40cf65f87097ace5ea0476045",
    "topics": [
        "0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb",
        "0x000000000000000000000000ada2005600dec949baf300f4c6120000bdb6eaab",
        "0x00000000000000000000000041e7aa1b047f13ad96f26ca49602fb403c90b78d",
        "0x000000000000000000000000ada2005600dec949baf300f4c6120000bdb6eaab",
    ],
    "data": "0x000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000000247212f7902c30bd802ea461cc340b9fdb9ad0b35c1ce8aa75807ee264579f66455252c4605d295420c9f788919cbb436e4c17c7690a6dbe43b73bedac1c3069e000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000004c4b400000000000000000000000000000000000000000000000000000000000000000",
    "blockNumber": "0x568339e",
    "transactionHash": "0xc6c3f62a83b1dc2518a78f64878dfe479d4b5ffc98cf0a40f12ae63affdf60e4",
    "removed": False,
    "logIndex": "0x10",  # ADDED (absent from the source fixture)
}

CTF_TRANSFER_SINGLE = {  # same tx 0xc6c3f62a…: NegRiskAdapter burns 5.0 of the first id
    "address": "0x4d97dcd97ec945f40cf65f87097ace5ea0476045",
    "topics": [
        "0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62",
        "0x000000000000000000000000d91e80cf2e7be2e162c6513ced06f1dd0da35296",
        "0x000000000000000000000000d91e80cf2e7be2e162c6513ced06f1dd0da35296",
        "0x0000000000000000000000000000000000000000000000000000000000000000",
    ],
    "data": "0x47212f7902c30bd802ea461cc340b9fdb9ad0b35c1ce8aa75807ee264579f66400000000000000000000000000000000000000000000000000000000004c4b40",
    "blockNumber": "0x568339e",
    "transactionHash": "0xc6c3f62a83b1dc2518a78f64878dfe479d4b5ffc98cf0a40f12ae63affdf60e4",
    "removed": False,
    "logIndex": "0x14",  # ADDED (absent from the source fixture)
}

CONDITION_RESOLUTION = {  # tx 0x84b7768d…, 2 slots, payouts [1, 0]
    "address": "0x4d97dcd97ec945f40cf65f87097ace5ea0476045",
    "topics": [
        "0xb44d84d3289691f71497564b85d4233648d9dbae8cbdbb4329f301c3a0185894",
        "0xda4bfca4a2f26cce689ac3e2b89cc60a17fb0b994ee79f61ec8beb65f6886236",
        "0x00000000000000000000000065070be91477460d8a7aeeb94ef92fe056c2f2a7",
        "0xb7576115f85ca1f02c40bd07ae7373640423e87fcffd4c2a8986af23f2a01438",
    ],
    "data": "0x00000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000",
    "blockNumber": "0x56833e9",
    "transactionHash": "0x84b7768df7b4837c89179e776d0575e2c9dfce8f68fa8807de92f423ff40ace7",
    "logIndex": "0x258",
    "removed": False,
}

ID_A = 91958363139330442502833425817718612439883007647234691805139892313224439108792  # 0xcb4e96cd…94b8
ID_B = 54315894122091277780572381096000477428902047391072705201803442739231160757968  # 0x7815b4e5…6ed0
ID_C = 32172845847072308101858152476368078090585804255392742427414441920393186506340  # 0x47212f79…f664
ID_D = 38512271035623159013247540171403999426444962901454401971919205604712553580190  # 0x55252c46…069e


def _kw(lo, hi, addrs, ts=None, day=7):
    return dict(day_idx=day, from_block=lo, to_block=hi, addresses=set(addrs), timestamps=ts or {})


# ---------------------------------------------------------------------------- real vectors
def test_usdc_e_transfer():
    cols = decode_erc20([USDC_E_TRANSFER], **_kw(87_004_000, 87_004_000, [USDC_E]))
    assert tuple(cols) == ERC20_COLUMNS
    assert cols == {
        "token": [USDC_E],
        "from_address": [CTF],
        "to_address": ["0x6c7e2de5b9d1565793f3757ab568b973413c6816"],
        "value": [5_050_504],
        "tx_hash": ["0xe1fa9d91dd04fa508bb1d674194b4ece3635ff0b41cf71863d55529667bc48c7"],
        "log_index": [648],
        "block_number": [87_004_000],
        "block_time": [1_778_996_708],
        "day_idx": [7],
    }


def test_ctf_transfer_batch_two_ids_from_alchemy_receipt():
    ts = {16_318_246: 1_626_000_000}  # this log has no blockTimestamp: block_time comes from the map
    assert missing_timestamps([CTF_TRANSFER_BATCH]) == {16_318_246}
    cols = decode_erc1155([CTF_TRANSFER_BATCH], **_kw(16_318_000, 16_319_000, [CTF], ts, day=3))
    assert tuple(cols) == ERC1155_COLUMNS
    holder = "0xcf5cea15e49b33b70a0bef2d42a46425c54c80a1"
    assert cols == {
        "contract": [CTF, CTF],
        "operator": [holder, holder],
        "from_address": [holder, holder],
        "to_address": ["0x" + "0" * 40] * 2,  # a burn (merge)
        "token_id": [ID_A, ID_B],
        "value": [108_859_551, 108_859_551],
        "tx_hash": ["0x9ee9891518b06f4b5bf76a4bef4ba6d93e8d38a17b7aaad492f5555865da7dbb"] * 2,
        "log_index": [99, 99],
        "batch_index": [0, 1],
        "block_number": [16_318_246] * 2,
        "block_time": [1_626_000_000] * 2,
        "day_idx": [3, 3],
    }


def test_ctf_transfer_single_and_batch_same_tx():
    ts = {90_715_038: 1_784_000_000}
    cols = decode_erc1155([CTF_TRANSFER_BATCH_2, CTF_TRANSFER_SINGLE], **_kw(90_715_000, 90_716_000, [CTF], ts))
    assert cols["token_id"] == [ID_C, ID_D, ID_C]
    assert cols["value"] == [5_000_000, 0, 5_000_000]
    assert cols["batch_index"] == [0, 1, 0]
    assert cols["log_index"] == [16, 16, 20]
    assert cols["operator"] == [
        "0xada2005600dec949baf300f4c6120000bdb6eaab",
        "0xada2005600dec949baf300f4c6120000bdb6eaab",
        "0xd91e80cf2e7be2e162c6513ced06f1dd0da35296",
    ]
    assert cols["from_address"] == [
        "0x41e7aa1b047f13ad96f26ca49602fb403c90b78d",
        "0x41e7aa1b047f13ad96f26ca49602fb403c90b78d",
        "0xd91e80cf2e7be2e162c6513ced06f1dd0da35296",
    ]
    assert cols["to_address"] == ["0xada2005600dec949baf300f4c6120000bdb6eaab"] * 2 + ["0x" + "0" * 40]
    assert cols["block_time"] == [1_784_000_000] * 3


def test_condition_resolution():
    ts = {90_715_113: 1_784_000_150}
    cols = decode_resolutions([CONDITION_RESOLUTION], **_kw(90_715_000, 90_716_000, [CTF], ts))
    assert tuple(cols) == RESOLUTION_COLUMNS
    assert cols == {
        "contract": [CTF],
        "condition_id": ["0xda4bfca4a2f26cce689ac3e2b89cc60a17fb0b994ee79f61ec8beb65f6886236"],
        "oracle": ["0x65070be91477460d8a7aeeb94ef92fe056c2f2a7"],
        "question_id": ["0xb7576115f85ca1f02c40bd07ae7373640423e87fcffd4c2a8986af23f2a01438"],
        "outcome_slot_count": [2],
        "payout_numerators": [[1, 0]],
        "tx_hash": ["0x84b7768df7b4837c89179e776d0575e2c9dfce8f68fa8807de92f423ff40ace7"],
        "log_index": [600],
        "block_number": [90_715_113],
        "block_time": [1_784_000_150],
        "day_idx": [7],
    }


def test_token_registered_constructed():
    # Constructed (no real TokenRegistered log was found): token ids are the real ids above.
    log = {
        "address": EXCHANGE.upper().replace("0X", "0x"),  # providers may checksum: we lowercase
        "topics": [TOPIC_TOKEN_REGISTERED, "0x%064x" % ID_C, "0x%064x" % ID_D, "0x" + "ab" * 32],
        "data": "0x",
        "blockNumber": "0x10",
        "transactionHash": "0x" + "12" * 32,
        "logIndex": "0x2",
        "blockTimestamp": "0x64",
        "removed": False,
    }
    cols = decode_registrations([log], **_kw(16, 16, [EXCHANGE]))
    assert tuple(cols) == REGISTRATION_COLUMNS
    assert cols["contract"] == [EXCHANGE] and cols["token0"] == [ID_C] and cols["token1"] == [ID_D]
    assert cols["condition_id"] == ["0x" + "ab" * 32] and cols["block_time"] == [100]


def test_cross_check_with_eth_abi():
    from eth_abi import decode as abi_decode

    for log in (CTF_TRANSFER_BATCH, CTF_TRANSFER_BATCH_2):
        ids, vals = abi_decode(["uint256[]", "uint256[]"], bytes.fromhex(log["data"][2:]))
        cols = decode_erc1155([log], **_kw(0, 10**9, [CTF], {int(log["blockNumber"], 16): 0}))
        assert cols["token_id"] == list(ids) and cols["value"] == list(vals)
    (v,) = abi_decode(["uint256"], bytes.fromhex(USDC_E_TRANSFER["data"][2:]))
    assert decode_erc20([USDC_E_TRANSFER], **_kw(0, 10**9, [USDC_E]))["value"] == [v]
    slots, payouts = abi_decode(["uint256", "uint256[]"], bytes.fromhex(CONDITION_RESOLUTION["data"][2:]))
    cols = decode_resolutions([CONDITION_RESOLUTION], **_kw(0, 10**9, [CTF], {90_715_113: 0}))
    assert cols["outcome_slot_count"] == [slots] and cols["payout_numerators"] == [list(payouts)]


def test_uint256_extremes_exact():
    log = copy.deepcopy(USDC_E_TRANSFER)
    log["data"] = "0x" + "f" * 64
    assert decode_erc20([log], **_kw(0, 10**9, [USDC_E]))["value"] == [2**256 - 1]


def test_empty_and_dispatch():
    cols = decode("erc20", [], **_kw(0, 1, [USDC_E]))
    assert cols == {c: [] for c in ERC20_COLUMNS}
    assert decode("erc1155", [CTF_TRANSFER_SINGLE], **_kw(0, 10**9, [CTF], {90_715_038: 5}))["value"] == [5_000_000]


def test_checksummed_addresses_and_hashes_are_lowercased():
    log = copy.deepcopy(USDC_E_TRANSFER)
    log["address"] = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"
    log["topics"][2] = log["topics"][2].upper().replace("0X", "0x")
    log["transactionHash"] = log["transactionHash"].upper().replace("0X", "0x")
    cols = decode_erc20([log], **_kw(0, 10**9, [USDC_E]))
    assert cols["token"] == [USDC_E]
    assert cols["to_address"] == ["0x6c7e2de5b9d1565793f3757ab568b973413c6816"]
    assert cols["tx_hash"] == [USDC_E_TRANSFER["transactionHash"]]


# ---------------------------------------------------------------------------- malformed
def _mut(base, **changes):
    log = copy.deepcopy(base)
    for k, v in changes.items():
        if v is _DEL:
            del log[k]
        else:
            log[k] = v
    return log


_DEL = object()
T = USDC_E_TRANSFER["topics"]
B = CTF_TRANSFER_BATCH_2
BATCH_DATA = B["data"]

ERC20_BAD = [
    ("two-topics", _mut(USDC_E_TRANSFER, topics=T[:2])),
    ("four-topics", _mut(USDC_E_TRANSFER, topics=T + ["0x" + "0" * 64])),
    ("approval-topic0", _mut(USDC_E_TRANSFER, topics=["0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"] + T[1:])),
    ("short-data", _mut(USDC_E_TRANSFER, data=USDC_E_TRANSFER["data"][:-2])),
    ("odd-data", _mut(USDC_E_TRANSFER, data=USDC_E_TRANSFER["data"] + "0")),
    ("empty-data", _mut(USDC_E_TRANSFER, data="0x")),
    ("nonhex-data", _mut(USDC_E_TRANSFER, data="0x" + "g" * 64)),
    ("bad-address-topic", _mut(USDC_E_TRANSFER, topics=[T[0], "0x" + "1" * 64, T[2]])),
    ("short-topic", _mut(USDC_E_TRANSFER, topics=[T[0], T[1][:-2], T[2]])),
    ("removed", _mut(USDC_E_TRANSFER, removed=True)),
    ("other-address", _mut(USDC_E_TRANSFER, address="0x3c499c542cef5e3811e1192ce70d8cc03d5c3359")),
    ("below-range", _mut(USDC_E_TRANSFER, blockNumber=hex(86_999_999))),
    ("above-range", _mut(USDC_E_TRANSFER, blockNumber=hex(87_010_001))),
    ("no-logindex", _mut(USDC_E_TRANSFER, logIndex=_DEL)),
    ("bad-logindex", _mut(USDC_E_TRANSFER, logIndex="zz")),
    ("no-txhash", _mut(USDC_E_TRANSFER, transactionHash=_DEL)),
    ("short-txhash", _mut(USDC_E_TRANSFER, transactionHash="0x1234")),
    ("no-topics", _mut(USDC_E_TRANSFER, topics=_DEL)),
    ("topics-none", _mut(USDC_E_TRANSFER, topics=None)),
    ("not-a-dict", "garbage"),
]


@pytest.mark.parametrize("log", [c[1] for c in ERC20_BAD], ids=[c[0] for c in ERC20_BAD])
def test_erc20_malformed_rejects_whole_response(log):
    good = copy.deepcopy(USDC_E_TRANSFER)
    good["logIndex"] = "0x1"
    with pytest.raises(InvalidResponse):
        decode_erc20([good, log], **_kw(87_000_000, 87_010_000, [USDC_E]))


def test_duplicate_log_rejected():
    with pytest.raises(InvalidResponse, match="duplicate"):
        decode_erc20([USDC_E_TRANSFER, dict(USDC_E_TRANSFER)], **_kw(0, 10**9, [USDC_E]))
    with pytest.raises(InvalidResponse, match="duplicate"):
        decode_erc1155([CTF_TRANSFER_SINGLE, dict(CTF_TRANSFER_SINGLE)], **_kw(0, 10**9, [CTF], {90_715_038: 1}))


def test_missing_timestamp_is_reported():
    log = _mut(USDC_E_TRANSFER, blockTimestamp=_DEL)
    assert missing_timestamps([log, USDC_E_TRANSFER]) == {87_004_000}
    with pytest.raises(InvalidResponse, match="timestamp"):
        decode_erc20([log], **_kw(0, 10**9, [USDC_E]))
    assert decode_erc20([log], **_kw(0, 10**9, [USDC_E], {87_004_000: 42}))["block_time"] == [42]


def _word(n):
    return "%064x" % n


ERC1155_BAD = [
    ("three-topics", _mut(B, topics=B["topics"][:3])),
    ("unexpected-topic0", _mut(B, topics=[T[0]] + B["topics"][1:])),
    ("single-short-data", _mut(CTF_TRANSFER_SINGLE, data=CTF_TRANSFER_SINGLE["data"][:-64])),
    ("single-long-data", _mut(CTF_TRANSFER_SINGLE, data=CTF_TRANSFER_SINGLE["data"] + "0" * 64)),
    ("batch-odd-data", _mut(B, data=BATCH_DATA + "00")),
    ("batch-truncated", _mut(B, data=BATCH_DATA[:-64])),
    ("batch-len-mismatch", _mut(B, data="0x" + _word(0x40) + _word(0xA0) + _word(2) + _word(1) + _word(2) + _word(1) + _word(7))),
    ("batch-offset-unaligned", _mut(B, data="0x" + _word(0x41) + BATCH_DATA[66:])),
    ("batch-offset-beyond", _mut(B, data="0x" + _word(0x4000) + BATCH_DATA[66:])),
    ("batch-huge-length", _mut(B, data="0x" + BATCH_DATA[2:130] + _word(2**200) + BATCH_DATA[194:])),
    ("batch-empty", _mut(B, data="0x")),
    ("removed", _mut(B, removed=True)),
    ("other-address", _mut(B, address=USDC_E)),
    ("outside-range", _mut(B, blockNumber="0x1")),
]


@pytest.mark.parametrize("log", [c[1] for c in ERC1155_BAD], ids=[c[0] for c in ERC1155_BAD])
def test_erc1155_malformed_rejects_whole_response(log):
    with pytest.raises(InvalidResponse):
        decode_erc1155([CTF_TRANSFER_SINGLE, log], **_kw(90_715_000, 90_716_000, [CTF], {90_715_038: 1, 1: 1}))


def test_resolution_malformed():
    bad_slots = _mut(CONDITION_RESOLUTION, data="0x" + _word(3) + CONDITION_RESOLUTION["data"][66:])
    for log in (
        bad_slots,
        _mut(CONDITION_RESOLUTION, topics=CONDITION_RESOLUTION["topics"][:3]),
        _mut(CONDITION_RESOLUTION, data=CONDITION_RESOLUTION["data"][:-64]),
        _mut(CONDITION_RESOLUTION, removed=True),
    ):
        with pytest.raises(InvalidResponse):
            decode_resolutions([log], **_kw(0, 10**9, [CTF], {90_715_113: 1}))


def test_registration_malformed():
    log = {
        "address": EXCHANGE,
        "topics": [TOPIC_TOKEN_REGISTERED, "0x%064x" % 1, "0x%064x" % 2, "0x" + "ab" * 32],
        "data": "0x",
        "blockNumber": "0x10",
        "transactionHash": "0x" + "12" * 32,
        "logIndex": "0x2",
        "blockTimestamp": "0x64",
    }
    decode_registrations([log], **_kw(0, 100, [EXCHANGE]))
    for bad in (
        _mut(log, data="0x" + _word(1)),
        _mut(log, topics=log["topics"][:3]),
        _mut(log, topics=log["topics"][:3] + ["0x12"]),
        _mut(log, address=CTF),
    ):
        with pytest.raises(InvalidResponse):
            decode_registrations([bad], **_kw(0, 100, [EXCHANGE]))
