"""The async API, batches, /stats, eth_call, the child process and the CLI."""

from __future__ import annotations

import argparse
import json
import os

import aiohttp
import pytest

from console.devchain import cli
from console.devchain.index import FilterSpec
from console.devchain.process import spawn
from console.devchain.server import start_server
from console.protocol import DEFAULT_PROFILE


async def test_start_server_api(small_world):
    srv = await start_server(small_world, "clean", latency_ms=1)
    try:
        assert srv.url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as s:
            async with s.post(srv.url, json={"jsonrpc": "2.0", "id": "a", "method": "eth_chainId"}) as r:
                assert (await r.json()) == {"jsonrpc": "2.0", "id": "a", "result": "0x89"}
            async with s.get(srv.url + "/stats") as r:
                st = await r.json()
        assert st["requests_by_method"] == {"eth_chainId": 1}
        assert srv.stats.by_method["eth_chainId"] == 1
    finally:
        await srv.stop()
    with pytest.raises(ValueError):
        await start_server(small_world, host="0.0.0.0")


def test_batch(small_world, serve):
    srv = serve(small_world, "alchemy")
    s, e = small_world.day_bounds(0)
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getLogs",
         "params": [{"fromBlock": hex(s), "toBlock": hex(s + 1000), "address": DEFAULT_PROFILE.ctf[0].address}]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_nope"},
        "garbage",
        {"jsonrpc": "2.0", "id": 5, "method": "eth_blockNumber"},
    ]
    status, _h, body = srv.post(batch)
    out = json.loads(body)
    assert status == 200 and isinstance(out, list) and len(out) == 5
    assert out[0]["result"] == "0x89" and out[0]["id"] == 1
    ctf_only = FilterSpec.from_params(DEFAULT_PROFILE.ctf[0].address)
    assert out[1]["id"] == 2 and out[1]["result"] == small_world.logs_in(s, s + 1000, ctf_only)
    assert out[2]["error"]["code"] == -32601 and out[2]["id"] == 3
    assert out[3]["error"]["code"] == -32600
    assert int(out[4]["result"], 16) == small_world.head
    status, _h, body = srv.post([])
    assert json.loads(body)["error"]["code"] == -32600
    st = json.loads(srv.get("/stats")[1])
    assert st["batches"] == 2 and st["getlogs_calls"] == 1 and st["logs_served"] == len(out[1]["result"])


def test_eth_call_balances(small_world, small_server):
    usdc = DEFAULT_PROFILE.collateral[0].address
    rows = small_world.truth_rows("erc20_transfers", "all")
    mid = rows[len(rows) // 2]["block_number"]
    bal = {}
    supply = 0
    for r in rows:
        if r["block_number"] > mid:
            break
        v = int(r["value"])
        if r["from_address"] == "0x" + "0" * 40:
            supply += v
        else:
            bal[r["from_address"]] = bal.get(r["from_address"], 0) - v
        if r["to_address"] == "0x" + "0" * 40:
            supply -= v
        else:
            bal[r["to_address"]] = bal.get(r["to_address"], 0) + v
    who = max(bal, key=bal.get)
    _, r = small_server.call("eth_call", [{"to": usdc, "data": "0x18160ddd"}, hex(mid)])
    assert int(r["result"], 16) == supply
    _, r = small_server.call("eth_call", [{"to": usdc, "data": "0x70a08231" + "0" * 24 + who[2:]}, hex(mid)])
    assert int(r["result"], 16) == bal[who] > 0


def test_spawn_and_stop(tmp_path):
    with spawn("small", "clean", seed=2, days=1, export_truth=tmp_path / "truth") as p:
        assert p.url.startswith("http://127.0.0.1:")
        assert p.alive()
        assert p.stats()["requests_by_method"]["eth_chainId"] >= 1
        pid = p.pid
        assert "SIMULATED" in p.output()
    assert not p.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    meta = json.loads((tmp_path / "truth" / "meta.json").read_text())
    assert meta["days"] == 1 and meta["seed"] == 2


def _args(**kw):
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    argv = []
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return p.parse_args(argv)


def test_cli_rejects_bad_config(capsys):
    assert cli.run(_args(host="0.0.0.0")) == 2
    assert "loopback" in capsys.readouterr().err
    assert cli.run(_args(host="192.168.1.5")) == 2
    assert cli.run(_args(profile="nope")) == 2
    assert cli.run(_args(density="huge")) == 2
    assert cli.run(_args(start_date="2024-13-01")) == 2
    assert cli.run(_args(days=0)) == 2
    assert cli.run(_args(range_cap=0)) == 2


def test_cli_defaults():
    a = _args()
    assert (a.host, a.port, a.profile, a.density, a.seed, a.latency_ms, a.export_truth) == (
        "127.0.0.1", 8545, "demo", "demo", 1, 0.0, None)


def test_cli_import_is_light():
    import subprocess
    import sys

    code = "import sys, console.devchain.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('web3', 'eth_abi', 'aiohttp', 'orjson', 'console') ))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__)))).stdout
    mods = eval(out)
    assert not [m for m in mods if m.split(".")[0] in ("web3", "eth_abi", "aiohttp", "orjson")]
