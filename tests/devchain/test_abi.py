"""The hand-rolled encoders agree with eth_abi."""

from __future__ import annotations

from eth_abi import decode
from hypothesis import given
from hypothesis import strategies as st

from console.devchain import abi

u256 = st.integers(min_value=0, max_value=2**256 - 1)


@given(st.lists(u256, min_size=0, max_size=4), st.lists(u256, min_size=0, max_size=4))
def test_uint_arrays(ids, values):
    data = abi.data_uint_arrays(ids, values)
    assert decode(["uint256[]", "uint256[]"], bytes.fromhex(data[2:])) == (tuple(ids), tuple(values))
    assert abi.decode_uint_arrays(data, 2) == [ids, values]


@given(st.lists(st.integers(0, 10), min_size=1, max_size=4))
def test_resolution_data(payouts):
    data = abi.data_resolution(len(payouts), payouts)
    assert decode(["uint256", "uint256[]"], bytes.fromhex(data[2:])) == (len(payouts), tuple(payouts))


@given(u256, u256)
def test_words(a, b):
    assert decode(["uint256", "uint256"], bytes.fromhex(abi.data_words(a, b)[2:])) == (a, b)


def test_noise_signatures_are_keccak():
    from eth_utils import keccak

    for topic, sig in abi.NOISE_SIGNATURES.items():
        assert "0x" + keccak(text=sig).hex() == topic, sig
