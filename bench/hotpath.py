"""Ingest hot path figures: JSON parse of an eth_getLogs response and log decoding.

    .venv/bin/python bench/hotpath.py [--logs 10000] [--repeat 5]

Prints (best of --repeat runs):
- the parse of a 10,000-log eth_getLogs response (bytes as a provider sends them) into the typed
  logs the decoders read (console/engine/wire.py), next to orjson.loads into dicts (what it replaced);
- decode logs/s for ERC20 Transfer and ERC1155 TransferSingle/TransferBatch with the hand-rolled
  hex slicing of console.engine.decode (the chosen implementation, with full validation);
- the same decoding done with eth_abi, for comparison;
- with --insert: the store's insert of the decoded ERC-20 columns into embedded ClickHouse (chDB),
  and, as the yardstick for a future native path, chDB turning the raw `result` array of the
  response into the same rows itself (INSERT ... SELECT FROM file(JSONEachRow), no Python per log).
Synthetic but realistic logs: lowercase hex, random 256-bit token ids, 6-decimal amounts,
blockTimestamp present (as Alchemy/Infura/Erigon send it), ~10% of ERC1155 logs are batches of 2.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import orjson  # noqa: E402

from console.engine.decode import decode_erc20, decode_erc1155  # noqa: E402
from console.engine.wire import read_logs_reply  # noqa: E402
from console.protocol import TOPIC_TRANSFER, TOPIC_TRANSFER_BATCH, TOPIC_TRANSFER_SINGLE  # noqa: E402

USDC = "0x2791bca1f2de4661ed88a30c99a7a9449aa84174"
CTF = "0x4d97dcd97ec945f40cf65f87097ace5ea0476045"


def _addr(r: random.Random) -> str:
    return "%040x" % r.getrandbits(160)


def _w(n: int) -> str:
    return "%064x" % n


def make_logs(n: int, kind: str, seed: int = 1, first_block: int = 64_000_000) -> list[dict]:
    r = random.Random(seed)
    logs = []
    block = first_block
    li = 0
    wallets = [_addr(r) for _ in range(2000)]
    ids = [r.getrandbits(256) for _ in range(400)]
    for i in range(n):
        if r.random() < 0.3:
            block += 1
            li = 0
        tx = "0x%064x" % r.getrandbits(256)
        common = {
            "blockNumber": hex(block),
            "blockHash": "0x%064x" % (block * 7919),
            "blockTimestamp": hex(1_730_000_000 + 2 * (block - first_block)),
            "transactionHash": tx,
            "transactionIndex": hex(r.randrange(200)),
            "logIndex": hex(li),
            "removed": False,
        }
        li += 1
        if kind == "erc20":
            logs.append(
                {
                    "address": USDC,
                    "topics": [TOPIC_TRANSFER, "0x" + "0" * 24 + r.choice(wallets), "0x" + "0" * 24 + r.choice(wallets)],
                    "data": "0x" + _w(r.randrange(10**4, 10**11)),
                    **common,
                }
            )
        else:
            op, fa, ta = (r.choice(wallets) for _ in range(3))
            topics_tail = ["0x" + "0" * 24 + op, "0x" + "0" * 24 + fa, "0x" + "0" * 24 + ta]
            if r.random() < 0.1:
                a, b = r.sample(ids, 2)
                v = r.randrange(10**6, 10**10)
                data = "0x" + _w(0x40) + _w(0xA0) + _w(2) + _w(a) + _w(b) + _w(2) + _w(v) + _w(v)
                logs.append({"address": CTF, "topics": [TOPIC_TRANSFER_BATCH] + topics_tail, "data": data, **common})
            else:
                data = "0x" + _w(r.choice(ids)) + _w(r.randrange(10**6, 10**10))
                logs.append({"address": CTF, "topics": [TOPIC_TRANSFER_SINGLE] + topics_tail, "data": data, **common})
    return logs


def best(fn, repeat: int) -> float:
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def eth_abi_erc20(logs, addresses):
    from eth_abi import decode as abi_decode

    out = []
    for log in logs:
        (value,) = abi_decode(["uint256"], bytes.fromhex(log["data"][2:]))
        t = log["topics"]
        out.append((log["address"], "0x" + t[1][26:], "0x" + t[2][26:], value, int(log["blockNumber"], 16)))
    return out


def eth_abi_erc1155(logs, addresses):
    from eth_abi import decode as abi_decode

    out = []
    for log in logs:
        raw = bytes.fromhex(log["data"][2:])
        if log["topics"][0] == TOPIC_TRANSFER_SINGLE:
            i, v = abi_decode(["uint256", "uint256"], raw)
            out.append((i, v))
        else:
            ids, vals = abi_decode(["uint256[]", "uint256[]"], raw)
            out.extend(zip(ids, vals))
    return out


NATIVE_ERC20 = """INSERT INTO {db}.erc20_transfers
    (token, from_address, to_address, value, tx_hash, log_index, block_number, block_time, day_idx)
SELECT lower(address), concat('0x', lower(substring(topics[2], 27))),
       concat('0x', lower(substring(topics[3], 27))), reinterpretAsUInt256(reverse(unhex(substring(data, 3)))),
       lower(transactionHash), reinterpretAsUInt32(reverse(unhex(leftPad(substring(logIndex, 3), 8, '0')))),
       reinterpretAsUInt64(reverse(unhex(leftPad(substring(blockNumber, 3), 16, '0')))),
       toDateTime(reinterpretAsUInt64(reverse(unhex(leftPad(substring(blockTimestamp, 3), 16, '0')))), 'UTC'), 0
FROM file('{path}', 'JSONEachRow', 'address String, topics Array(String), data String,
          blockNumber String, transactionHash String, logIndex String, blockTimestamp String')"""


def insert_figures(n: int, repeat: int) -> None:
    """Per-log cost of the store's insert, and of letting ClickHouse parse the raw response."""
    import asyncio
    import tempfile

    from console.engine.store import Store

    logs = make_logs(n, "erc20")
    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": logs})
    lo, hi = int(logs[0]["blockNumber"], 16), int(logs[-1]["blockNumber"], 16)
    cols = decode_erc20(read_logs_reply(body).result, addresses={USDC}, day_idx=0, from_block=lo,
                        to_block=hi, timestamps={})

    async def go(tmp: str) -> None:
        store = await Store.open(f"chdb://{tmp}/ch")
        try:
            t_ins = c_ins = float("inf")
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                await store.insert_columns("erc20_transfers", cols)
                t_ins, c_ins = min(t_ins, time.perf_counter() - t0), min(c_ins, time.process_time() - c0)
            raw = body[body.index(b'"result":') + 9: body.rindex(b"}")]
            path = os.path.join(tmp, "result.json")
            t_nat = c_nat = float("inf")
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                with open(path, "wb") as f:
                    f.write(raw)
                await store.command(NATIVE_ERC20.replace("{path}", path))
                t_nat, c_nat = min(t_nat, time.perf_counter() - t0), min(c_nat, time.process_time() - c0)
        finally:
            await store.close()
        print(f"  insert   decoded columns -> chDB: {t_ins / n * 1e6:5.2f} us/log wall, {c_ins / n * 1e6:5.2f} us "
              f"CPU | native (chDB parses the raw result): {t_nat / n * 1e6:5.2f} us/log wall, "
              f"{c_nat / n * 1e6:5.2f} us CPU (parse + decode + insert, no validation)")

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(go(tmp))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--logs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--insert", action="store_true", help="also the insert into embedded ClickHouse")
    a = ap.parse_args()
    n = a.logs

    print(f"hot path, {n:,} logs per response, best of {a.repeat}  (python {sys.version.split()[0]})")
    for kind in ("erc20", "erc1155"):
        logs = make_logs(n, kind)
        body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": logs})
        t_orjson = best(lambda: orjson.loads(body), a.repeat)
        t_parse = best(lambda: read_logs_reply(body), a.repeat)
        parsed = read_logs_reply(body).result
        as_dicts = orjson.loads(body)["result"]  # eth_abi's reference reads dicts
        lo, hi = int(parsed[0].blockNumber, 16), int(parsed[-1].blockNumber, 16)
        kw = dict(day_idx=0, from_block=lo, to_block=hi, timestamps={})
        if kind == "erc20":
            decoder, addresses, ref = decode_erc20, {USDC}, lambda: eth_abi_erc20(as_dicts, {USDC})
        else:
            decoder, addresses, ref = decode_erc1155, {CTF}, lambda: eth_abi_erc1155(as_dicts, {CTF})
        dec = lambda: decoder(parsed, addresses=addresses, **kw)  # noqa: E731
        rows = len(dec()["tx_hash"])
        t_dec = best(dec, a.repeat)
        t_ref = best(ref, max(1, a.repeat // 2))
        # parse and decode in one go, as a run does: the freeing of each response counts too
        t_both = best(lambda: decoder(read_logs_reply(body).result, addresses=addresses, **kw), a.repeat)
        print(
            f"  {kind:8s} response {len(body) / 1e6:5.2f} MB: parse {t_parse * 1e3:6.1f} ms "
            f"({n / t_parse / 1e3:6.0f}k logs/s; orjson into dicts {t_orjson * 1e3:6.1f} ms) | "
            f"decode+validate (hex slicing) {t_dec * 1e3:6.1f} ms = {n / t_dec / 1e3:5.0f}k logs/s "
            f"({rows:,} rows) | eth_abi decode only {t_ref * 1e3:6.1f} ms = {n / t_ref / 1e3:5.0f}k logs/s "
            f"| parse+decode {t_both / n * 1e6:4.2f} us/log = {n / t_both / 1e3:5.0f}k logs/s"
        )
    if a.insert:
        insert_figures(n, a.repeat)


if __name__ == "__main__":
    main()
