"""Ground truth: self-consistent, and exactly what the protocol profile's streams return."""

from __future__ import annotations

import collections
import json

import pytest
from eth_abi import decode

from console.devchain.truth import win_rate
from console.devchain.world import build_world
from console.protocol import DEFAULT_PROFILE, TOPIC_TRANSFER_BATCH, ZERO_ADDRESS

TABLE_COLUMNS = {
    "erc20": ["token", "from_address", "to_address", "value", "tx_hash", "log_index", "block_number", "block_time",
              "day_idx"],
    "erc1155": ["contract", "operator", "from_address", "to_address", "token_id", "value", "tx_hash", "log_index",
                "batch_index", "block_number", "block_time", "day_idx"],
    "resolution": ["contract", "condition_id", "oracle", "question_id", "outcome_slot_count", "payout_numerators",
                   "tx_hash", "log_index", "block_number", "block_time", "day_idx"],
    "registration": ["contract", "token0", "token1", "condition_id", "tx_hash", "log_index", "block_number",
                     "block_time", "day_idx"],
}


def _addr(topic):
    return "0x" + topic[-40:]


def _decode(kind, log, d, times):
    """Independent decoding (eth_abi) of a served log into table rows."""
    t = log["topics"]
    data = bytes.fromhex(log["data"][2:])
    bn = int(log["blockNumber"], 16)
    base = {"tx_hash": log["transactionHash"], "log_index": int(log["logIndex"], 16), "block_number": bn,
            "block_time": times[bn], "day_idx": d}
    if kind == "erc20":
        (v,) = decode(["uint256"], data)
        return [{"token": log["address"], "from_address": _addr(t[1]), "to_address": _addr(t[2]), "value": str(v),
                 **base}]
    if kind == "erc1155":
        head = {"contract": log["address"], "operator": _addr(t[1]), "from_address": _addr(t[2]),
                "to_address": _addr(t[3])}
        if t[0] == TOPIC_TRANSFER_BATCH:
            ids, vals = decode(["uint256[]", "uint256[]"], data)
        else:
            i, v = decode(["uint256", "uint256"], data)
            ids, vals = [i], [v]
        return [{**head, "token_id": str(i), "value": str(v), **base, "batch_index": k}
                for k, (i, v) in enumerate(zip(ids, vals))]
    if kind == "resolution":
        n, payouts = decode(["uint256", "uint256[]"], data)
        return [{"contract": log["address"], "condition_id": t[1], "oracle": _addr(t[2]), "question_id": t[3],
                 "outcome_slot_count": n, "payout_numerators": list(payouts), **base}]
    if kind == "registration":
        return [{"contract": log["address"], "token0": str(int(t[1], 16)), "token1": str(int(t[2], 16)),
                 "condition_id": t[3], **base}]
    raise AssertionError(kind)


def _block_times(srv, blocks):
    """Block timestamps via batched eth_getBlockByNumber (also exercises batches)."""
    out = {}
    blocks = sorted(blocks)
    for i in range(0, len(blocks), 400):
        chunk = blocks[i:i + 400]
        batch = [{"jsonrpc": "2.0", "id": j, "method": "eth_getBlockByNumber", "params": [hex(b), False]}
                 for j, b in enumerate(chunk)]
        status, _h, body = srv.post(batch)
        resp = sorted(json.loads(body), key=lambda r: r["id"])
        for b, r in zip(chunk, resp):
            out[b] = int(r["result"]["timestamp"], 16)
    return out


def _fetch(srv, world, scope):
    """Rows per kind, fetched with the default profile's streams, day by day."""
    logs_by_kind = collections.defaultdict(list)
    for d in range(world.days):
        s, e = world.day_bounds(d)
        seen = set()
        for st in DEFAULT_PROFILE.streams(world.day_date(d), scope):
            status, resp = srv.call("eth_getLogs", [{"fromBlock": hex(s), "toBlock": hex(e), **st.filter_params()}])
            assert status == 200, resp
            for log in resp["result"]:
                key = (log["transactionHash"], int(log["logIndex"], 16))
                if st.kind == "erc20":
                    if key in seen:
                        continue
                    seen.add(key)
                logs_by_kind[st.kind].append((d, log))
    blocks = {int(l["blockNumber"], 16) for v in logs_by_kind.values() for _, l in v}
    times = _block_times(srv, blocks)
    rows = {}
    kmap = {"erc20": "erc20", "erc1155": "erc1155", "resolution": "resolution", "registration": "registration"}
    for kind, items in logs_by_kind.items():
        rows[kmap[kind]] = [r for d, l in items for r in _decode(kind, l, d, times)]
    return rows


def _key(r):
    return (r["block_number"], r["log_index"], r.get("batch_index", 0))


@pytest.mark.parametrize("scope", ["polymarket", "all"])
def test_truth_equals_streams(small_world, small_server, scope):
    got = _fetch(small_server, small_world, scope)
    expect = {
        "erc20": small_world.truth_rows("erc20_transfers", scope),
        "erc1155": small_world.truth_rows("erc1155_transfers"),
        "resolution": small_world.truth_rows("condition_resolutions"),
        "registration": small_world.truth_rows("token_registrations"),
    }
    for kind, rows in expect.items():
        assert rows, f"no {kind} truth rows in the small world"
        assert all(list(r) == TABLE_COLUMNS[kind] or set(r) == set(TABLE_COLUMNS[kind]) for r in rows)
        assert sorted(got.get(kind, []), key=_key) == sorted(rows, key=_key), kind


def test_scopes_differ_by_non_polymarket_transfers(small_world):
    pm = small_world.truth_rows("erc20_transfers", "polymarket")
    al = small_world.truth_rows("erc20_transfers", "all")
    contracts = set(DEFAULT_PROFILE.known_contracts(small_world.start_date))
    assert all(r["from_address"] in contracts or r["to_address"] in contracts for r in pm)
    extra = [r for r in al if r["from_address"] not in contracts and r["to_address"] not in contracts]
    assert len(al) == len(pm) + len(extra) and extra
    assert any(r["from_address"] == ZERO_ADDRESS for r in extra), "bridge mints"
    assert any(r["to_address"] == ZERO_ADDRESS for r in extra), "bridge burns"


def _ordered(rows):
    return sorted(rows, key=_key)


@pytest.mark.parametrize("seed", [7, 1, 2, 3])
def test_no_negative_balances_and_exchange_net_zero(small_world, seed):
    world = small_world if seed == 7 else build_world("small", seed=seed, days=2)
    erc20 = _ordered(world.truth_rows("erc20_transfers", "all"))
    erc1155 = _ordered(world.truth_rows("erc1155_transfers"))
    bal = collections.Counter()
    for r in erc20:
        v = int(r["value"])
        if r["from_address"] != ZERO_ADDRESS:
            bal[(r["token"], r["from_address"])] -= v
            assert bal[(r["token"], r["from_address"])] >= 0, r
        if r["to_address"] != ZERO_ADDRESS:
            bal[(r["token"], r["to_address"])] += v
    tok = collections.Counter()
    for r in erc1155:
        v = int(r["value"])
        if r["from_address"] != ZERO_ADDRESS:
            tok[(r["token_id"], r["from_address"])] -= v
            assert tok[(r["token_id"], r["from_address"])] >= 0, r
        if r["to_address"] != ZERO_ADDRESS:
            tok[(r["token_id"], r["to_address"])] += v
    exchanges = {d.address for d in DEFAULT_PROFILE.exchanges}
    net = collections.Counter()
    for r in erc20:
        for side, sign in (("from_address", -1), ("to_address", 1)):
            if r[side] in exchanges:
                net[(r["tx_hash"], r["token"])] += sign * int(r["value"])
    for r in erc1155:
        for side, sign in (("from_address", -1), ("to_address", 1)):
            if r[side] in exchanges:
                net[(r["tx_hash"], r["token_id"])] += sign * int(r["value"])
    assert net and all(v == 0 for v in net.values()), "exchange net flow per tx per asset must be 0"


def test_collateral_conservation(small_world):
    """CTF collateral = outstanding complete sets (unresolved) or winning tokens (resolved)."""
    regs = small_world.truth_rows("token_registrations")
    res = {r["condition_id"]: r["payout_numerators"] for r in small_world.truth_rows("condition_resolutions")}
    pairs = {}
    for r in regs:
        pairs.setdefault(r["condition_id"], (r["token0"], r["token1"]))
    supply = collections.Counter()
    for r in small_world.truth_rows("erc1155_transfers"):
        if r["from_address"] == ZERO_ADDRESS:
            supply[r["token_id"]] += int(r["value"])
        if r["to_address"] == ZERO_ADDRESS:
            supply[r["token_id"]] -= int(r["value"])
    ctf = DEFAULT_PROFILE.ctf[0].address
    locked = 0
    for r in small_world.truth_rows("erc20_transfers", "polymarket"):
        if r["to_address"] == ctf:
            locked += int(r["value"])
        if r["from_address"] == ctf:
            locked -= int(r["value"])
    expect = 0
    for cid, (t0, t1) in pairs.items():
        if cid in res:
            p = res[cid]
            expect += supply[t0] * p[0] + supply[t1] * p[1]
        else:
            assert supply[t0] == supply[t1], "unresolved: both outcomes have the same supply"
            expect += supply[t0]
    assert res, "some conditions resolve in the small world"
    assert locked == expect


def test_pnl_consistent_with_chain(small_world):
    pnl = small_world.truth_rows("pnl")
    assert pnl
    held = collections.Counter()
    gifted_from = set()
    for r in small_world.truth_rows("erc1155_transfers"):
        v = int(r["value"])
        if r["from_address"] != ZERO_ADDRESS:
            held[(r["from_address"], r["token_id"])] -= v
        if r["to_address"] != ZERO_ADDRESS:
            held[(r["to_address"], r["token_id"])] += v
        if r["operator"] == r["from_address"] and r["to_address"] != ZERO_ADDRESS:
            gifted_from.add((r["from_address"], r["token_id"]))
    keys = set()
    for r in pnl:
        k = (r["wallet"], r["token_id"])
        assert k not in keys
        keys.add(k)
        assert r["bought"] - r["sold"] == r["amount_held"] >= 0
        assert 0 <= r["avg_price"] <= 1
        if r["settled"]:
            assert r["amount_held"] > 0
        if k in gifted_from:
            assert held[k] <= r["amount_held"], "a gift leaves the sender holding less than its bookkeeping"
        else:
            assert held[k] == r["amount_held"], r
    # gift receivers never trade: no PnL rows for positions that only came in as gifts
    assert gifted_from, "the small world has gifts"


def test_demo_win_rate_in_band(demo_world):
    rate, wins, counted = win_rate(demo_world.truth_rows("pnl"))
    assert counted > 10_000
    assert 0.40 <= rate <= 0.50, rate


def test_days_and_export(small_world, tmp_path):
    counts = small_world.export_truth(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert files >= {"erc20_transfers_polymarket.jsonl", "erc20_transfers_all.jsonl", "erc1155_transfers.jsonl",
                     "condition_resolutions.jsonl", "token_registrations.jsonl", "days.jsonl", "pnl.jsonl",
                     "meta.json"}
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["seed"] == 7 and meta["density"] == "small" and meta["chain_id"] == 137
    assert meta["head"] == small_world.head and meta["days"] == small_world.days
    days = [json.loads(l) for l in (tmp_path / "days.jsonl").read_text().splitlines()]
    assert [d["day_idx"] for d in days] == list(range(small_world.days))
    per_day = collections.Counter(r["day_idx"] for r in small_world.truth_rows("erc1155_transfers"))
    pm = collections.Counter(r["day_idx"] for r in small_world.truth_rows("erc20_transfers", "polymarket"))
    for d in days:
        assert (d["start_block"], d["end_block"]) == small_world.day_bounds(d["day_idx"])
        assert d["erc1155"] == per_day[d["day_idx"]]
        assert d["erc20_polymarket"] == pm[d["day_idx"]]
        assert d["erc20_all"] >= d["erc20_polymarket"]
    first = json.loads((tmp_path / "erc1155_transfers.jsonl").read_text().splitlines()[0])
    assert list(first) == TABLE_COLUMNS["erc1155"] or set(first) == set(TABLE_COLUMNS["erc1155"])
    assert isinstance(first["value"], str) and isinstance(first["block_time"], int)
    assert counts["erc1155_transfers.jsonl"] == sum(per_day.values())
