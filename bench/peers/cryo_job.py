"""cryo on the job (runs inside the cryo venv: stdlib + cryo only).

    <cryo-venv>/bin/python cryo_job.py SPEC.json OUT_DIR [--inner-request-size N]
        [--max-concurrent-requests N] [--max-concurrent-chunks N] [--chunk-size N]
        [--filters exact|broad] [--parallel]

`cryo.freeze("logs", ...)` once per filter, each into its own sub-directory (cryo names files by
block range and skips files that already exist). cryo turns a list of topic values into one
request per value (a partition), so the exact job is 5 + 5 + 2 filters: USDC Transfer with each
Polymarket contract as topic1, the same as topic2, and the CTF's two ERC-1155 topic0s.
`--filters broad` asks for every USDC Transfer instead (1 + 2 filters) and leaves the selection
to the scorer. Prints one JSON line: per-freeze results and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("spec")
    ap.add_argument("out")
    ap.add_argument("--rpc", required=True)
    ap.add_argument("--inner-request-size", type=int, default=None)
    ap.add_argument("--max-concurrent-requests", type=int, default=None)
    ap.add_argument("--max-concurrent-chunks", type=int, default=None)
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--filters", choices=("exact", "broad"), default="exact")
    ap.add_argument("--parallel", action="store_true", help="run the freezes concurrently")
    a = ap.parse_args()
    with open(a.spec) as f:
        spec = json.load(f)

    import cryo

    blocks = [f"{spec['first_block']}:{spec['last_block'] + 1}"]  # cryo ranges exclude the end
    common: dict = {"blocks": blocks, "rpc": a.rpc, "verbose": False, "file_format": "parquet"}
    for k in ("inner_request_size", "max_concurrent_requests", "max_concurrent_chunks", "chunk_size"):
        v = getattr(a, k)
        if v is not None:
            common[k] = v
    usdc, ctf = [spec["usdc"]], [spec["ctf"]]
    tr = [spec["topic_transfer"]]
    if a.filters == "exact":
        jobs = {
            "usdc_from": dict(contract=usdc, topic0=tr, topic1=spec["contract_topics"]),
            "usdc_to": dict(contract=usdc, topic0=tr, topic2=spec["contract_topics"]),
        }
    else:
        jobs = {"usdc": dict(contract=usdc, topic0=tr)}
    jobs["ctf_transfers"] = dict(contract=ctf, topic0=spec["topics_1155"])

    results: dict = {}

    async def one(name: str, kw: dict) -> None:
        t = time.perf_counter()
        try:
            r = await cryo.async_freeze("logs", output_dir=f"{a.out}/{name}", **common, **kw)
            results[name] = {"result": r, "seconds": time.perf_counter() - t}
        except BaseException as exc:  # a Rust panic surfaces as pyo3 PanicException (BaseException)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000],
                             "trace": traceback.format_exc()[-2000:], "seconds": time.perf_counter() - t}

    async def run_all() -> None:
        if a.parallel:
            await asyncio.gather(*(one(n, kw) for n, kw in jobs.items()))
        else:
            for n, kw in jobs.items():
                await one(n, kw)

    asyncio.run(run_all())
    print(json.dumps({"freezes": results}, default=str), flush=True)
    sys.stderr.flush()
    # cryo 0.3.2's tokio threads crash the interpreter at exit now and then (SIGSEGV, or
    # "PyGILState_Release: thread state must be current" + abort) after every file is written;
    # leave without finalising, with our own verdict as the exit code.
    bad = any("error" in r or (r.get("result") or {}).get("n_errored") for r in results.values())
    os._exit(1 if bad else 0)


if __name__ == "__main__":
    main()
