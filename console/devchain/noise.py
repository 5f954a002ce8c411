"""Day-local activity that is not a market's: noise a correct filter must skip, and collateral
transfers that only the `all` USDC scope keeps.

Every noise kind is chosen to catch one specific filter bug:
- other ERC20 Transfers (same topic0) whose from/to is an exchange or the CTF: a filter that
  forgets the `address` restriction picks them up;
- ERC721 Transfers (same topic0, 4 topics) and another ERC1155 contract's TransferSingle with the
  exchange as operator: same trap for the other streams;
- collateral `Approval` with the exchange as spender (topic2): a usdc_to filter that forgets
  topic0 picks it up; CTF `ApprovalForAll` with an exchange operator: same for the CTF stream;
- unrelated contracts (DEX swaps/syncs, Polygon's LogFeeTransfer at 0x...1010).
Collateral wallet-to-wallet transfers are funded by a bridge mint earlier the same day, so no
wallet ever goes negative.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from . import abi
from .abi import addr_topic, data_words, uint_topic
from .markets import K_NOISE, K_USDC_OTHER, _h256, usdc

if TYPE_CHECKING:  # pragma: no cover
    from .world import World

OTHER_ERC20 = (
    "0x7ceb23fd6bc0add59e62ac25578270cff1b9f619",  # WETH
    "0xc2132d05d31c914a87c6611c10748aeb04b58e8f",  # USDT
    "0x3c499c542cef5e3811e1192ce70d8cc03d5c3359",  # native USDC
    "0x0d500b1d8e8ef31e21c99d1db9a6444d3adf1270",  # WMATIC
    "0x8f3cf7ad23cd3cadbd9735aff958023239c6a063",  # DAI
)
NFT_721 = "0x2953399124f0cbb46d2cbacd8a89cf0599974963"  # OpenSea shared storefront (Polygon)
OTHER_1155 = "0xa5f1ea7df861952863df2e8d1312f7305dabf215"
DEX_POOLS = (
    "0x45dda9cb7c25131df268515131f647d726f50608",
    "0xa374094527e1673a86de625aa59517c5de346d32",
    "0x6e7a5fafcec6bb1e78bae2a1f0b612012bf14827",
)
FEE_CONTRACT = "0x0000000000000000000000000000000000001010"
MAX_UINT = 2**256 - 1


def noise_txs(world: "World", d: int, s: int, e: int, relevant_target: int) -> list[tuple]:
    """(block, gkey, seq, logs) for day d's noise and plain collateral transfers."""
    rng = random.Random(_h256(world.seed, "noise", d))
    day = world.day_date(d)
    coll = world.profile.active(world.profile.collateral, day)
    coll = coll[0] if coll else None
    spenders = world.profile.active(world.profile.exchanges, day) + world.profile.active(world.profile.ctf, day)
    ctf = world.profile.ctf[0].address
    n = int(relevant_target * world.density.noise_ratio)
    pool = world.density.wallet_pool
    wallet = world.wallet
    out: list[tuple] = []
    span = e - s + 1
    seq = 0
    count = 0
    gbase = _h256(world.seed, "noise-g", d) & 0xFFFFFFF
    while count < n:
        b = s + rng.randrange(span)
        r = rng.random()
        a = wallet(rng.randrange(pool))
        logs: list[tuple]
        if r < 0.30:
            tok = rng.choice(OTHER_ERC20)
            other = rng.choice(spenders) if rng.random() < 0.3 else wallet(rng.randrange(pool))
            frm, to = (a, other) if rng.random() < 0.5 else (other, a)
            logs = [(tok, (abi.TOPIC_TRANSFER, addr_topic(frm), addr_topic(to)),
                     data_words(rng.randrange(1, 10**20)), K_NOISE)]
        elif r < 0.38 and coll:
            logs = [(coll, (abi.TOPIC_APPROVAL, addr_topic(a), addr_topic(rng.choice(spenders))),
                     data_words(MAX_UINT if rng.random() < 0.7 else rng.randrange(10**12)), K_NOISE)]
        elif r < 0.44:
            logs = [(ctf, (abi.TOPIC_APPROVAL_FOR_ALL, addr_topic(a), addr_topic(rng.choice(spenders))),
                     data_words(1), K_NOISE)]
        elif r < 0.50:
            logs = [(NFT_721, (abi.TOPIC_TRANSFER, addr_topic(a), addr_topic(wallet(rng.randrange(pool))),
                               uint_topic(rng.randrange(10**6))), "0x", K_NOISE)]
        elif r < 0.55:
            logs = [(OTHER_1155, (abi.TOPIC_TRANSFER_SINGLE, addr_topic(rng.choice(spenders)), addr_topic(a),
                                  addr_topic(wallet(rng.randrange(pool)))),
                     data_words(rng.randrange(1, 2**200), rng.randrange(1, 1000)), K_NOISE)]
        elif r < 0.80:
            pool_addr = rng.choice(DEX_POOLS)
            logs = [
                (pool_addr, (abi.TOPIC_SWAP_V3, addr_topic(a), addr_topic(a)),
                 data_words(rng.randrange(10**18), rng.randrange(10**18), rng.randrange(2**150),
                            rng.randrange(10**20), rng.randrange(2**23)), K_NOISE),
            ]
            if rng.random() < 0.5:
                logs.append((pool_addr, (abi.TOPIC_SYNC,), data_words(rng.randrange(10**24), rng.randrange(10**24)),
                             K_NOISE))
        elif r < 0.90 and coll:
            # bridge deposit, then (sometimes) a plain wallet-to-wallet payment later that day
            amt = (1 + rng.randrange(5000)) * 1_000_000
            out.append((b, gbase, seq, [usdc(coll, abi.ZERO_ADDRESS, a, amt, K_USDC_OTHER)]))
            seq += 1
            count += 1
            if rng.random() < 0.6 and b < e:
                b2 = b + 1 + rng.randrange(e - b)
                part = amt // (1 + rng.randrange(4))
                logs = [usdc(coll, a, wallet(rng.randrange(pool)), part, K_USDC_OTHER)]
                out.append((b2, gbase, seq, logs))
                seq += 1
                count += 1
            continue
        else:
            logs = [(FEE_CONTRACT, (abi.TOPIC_LOG_FEE_TRANSFER, addr_topic(FEE_CONTRACT), addr_topic(a),
                                    addr_topic("0x" + format(_h256(d, b) >> 96, "040x"))),
                     data_words(*(rng.randrange(10**18) for _ in range(5))), K_NOISE)]
        out.append((b, gbase, seq, logs))
        seq += 1
        count += len(logs)
    return out
