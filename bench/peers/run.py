"""Side by side on the same machine and the same simulated provider: our engine, cryo, ethereum-etl.

    .venv/bin/python bench/peers/run.py                       # demo job, all tools/profiles/settings
    .venv/bin/python bench/peers/run.py --quick               # the `small` world (3 quiet days)
    .venv/bin/python bench/peers/run.py --long 60 --tools ours,cryo --profiles clean --settings best
                                                              # 60 `full` days, provider-bound
    .venv/bin/python bench/peers/run.py --tools ours,cryo --profiles clean --settings best --repeat 3
    .venv/bin/python bench/peers/run.py --sweep               # the settings search behind "best"
    .venv/bin/python bench/peers/run.py --floor --tools ours --profiles clean --repeat 3
                                                              # + the provider's floor, ours' phases

For each (tool, settings, profile, repeat): a fresh devchain child with the same world and fault
profile (bench/ingest.py's `warm_up` generates every day before the clock starts), then the tool
as its own process under /usr/bin/time (peak RSS of that process), then the devchain's /stats
(eth_getLogs calls, minus the warm-up) and a completeness check of what the tool wrote against
the world's ground truth ((tx_hash, log_index) keys, see job.py).

The job: USDC.e Transfer touching a Polymarket contract + CTF TransferSingle/TransferBatch over
four `demo` days 2024-11-04..07 (election night 2024-11-06 is the spike: one stream exceeds a
10K-log cap within 2,000 blocks). The peers get their own venvs under --cache (default
/tmp/bench-peers, env BENCH_PEERS_CACHE); a peer that cannot be installed is reported and
skipped. Figures are printed and appended as JSON lines to --json; nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import envs  # noqa: E402
from job import JOB_STREAMS, Spec, classify_logs, job_for, job_minimum, score, spec_for, truth_keys  # noqa: E402
from ingest import warm_up  # noqa: E402  (bench/ingest.py, on sys.path via job.py)

from console.devchain.process import spawn  # noqa: E402
from console.protocol import address_topic  # noqa: E402

PROJECT_PY = sys.executable
TIME = "/usr/bin/time"

# Settings per tool. "default" = what the tool does out of the box; "best" = the fastest complete
# configuration found by --sweep on `clean` (see bench/RESULTS.md), used unchanged on every profile.
SETTINGS: dict[str, dict[str, dict]] = {
    "ours": {"default": {}},
    "cryo": {
        # cryo 0.3.2 defaults: 1 block per eth_getLogs (inner_request_size=1), 1000-block files
        "default": {},
        "best": {"inner_request_size": 10000, "chunk_size": 10000, "filters": "broad", "parallel": True},
    },
    "etl": {
        # ethereum-etl 2.4.2 defaults: --batch-size 100 (blocks per eth_getLogs), --max-workers 5
        "default": {},
        "best": {"batch_size": 20000, "max_workers": 2},
    },
}

SWEEP: dict[str, list[dict]] = {
    # cryo requests never span two files: inner_request_size only helps up to chunk_size.
    # A first pass (one run each) also tried inner_request_size 1000 / 200000, chunk 50000 with
    # request 10000, and max_concurrent_requests 4: all within the spread of these.
    "cryo": [
        {"inner_request_size": 10000, "chunk_size": 10000},
        {"inner_request_size": 50000, "chunk_size": 50000},
        {"inner_request_size": 10000, "chunk_size": 10000, "parallel": True},
        {"inner_request_size": 50000, "chunk_size": 50000, "parallel": True},
        {"inner_request_size": 10000, "chunk_size": 10000, "filters": "broad", "parallel": True},
        {"inner_request_size": 50000, "chunk_size": 50000, "filters": "broad", "parallel": True},
    ],
    # a first pass also tried --batch-size 1000 and --max-workers 10: slower
    "etl": [
        {"batch_size": 5000},
        {"batch_size": 20000},
        {"batch_size": 5000, "max_workers": 2},
        {"batch_size": 20000, "max_workers": 2},
    ],
}

TOOL_NAMES = {"ours": "backfill-console", "cryo": "cryo", "etl": "ethereum-etl"}


def checksum(addr: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(addr)


def tool_command(tool: str, st: dict, spec: Spec, url: str, job, work: Path, pythons: dict) -> list[str]:
    if tool == "ours":
        cmd = [PROJECT_PY, str(HERE / "ours_job.py"), "--url", url, "--start-date", job.start.isoformat(),
               "--days", str(job.ndays), "--data-dir", str(work / "data"), "--out", str(work / "ours.json")]
        for k in ("shards", "max_concurrency", "rps"):
            if k in st:
                cmd += ["--" + k.replace("_", "-"), str(st[k])]
        return cmd
    if tool == "cryo":
        (work / "spec.json").write_text(json.dumps(spec.to_json()))
        cmd = [str(pythons["cryo"]), str(HERE / "cryo_job.py"), str(work / "spec.json"), str(work / "cryo"),
               "--rpc", url]
        for k in ("inner_request_size", "max_concurrent_requests", "max_concurrent_chunks", "chunk_size", "filters"):
            if k in st:
                cmd += ["--" + k.replace("_", "-"), str(st[k])]
        if st.get("parallel"):
            cmd.append("--parallel")
        return cmd
    if tool == "etl":
        cmd = [str(pythons["etl"]), str(HERE / "etl_job.py"), "--", "export_token_transfers",
               "-s", str(spec.first_block), "-e", str(spec.last_block), "-p", url,
               "-t", checksum(spec.usdc), "-o", str(work / "etl.csv")]
        if "batch_size" in st:
            cmd += ["-b", str(st["batch_size"])]
        if "max_workers" in st:
            cmd += ["-w", str(st["max_workers"])]
        return cmd
    raise ValueError(tool)


def read_found(tool: str, work: Path, spec: Spec) -> tuple[dict, dict]:
    """Keys per table from what the tool wrote, and tool-specific extras."""
    extra: dict = {}
    if tool == "ours":
        p = work / "ours.json"
        if not p.exists():
            return {}, {"note": "engine wrote no result"}
        res = json.loads(p.read_text())
        kp = work / "ours_keys.json"
        if not kp.exists():
            return {}, {"note": "the stored keys could not be read back"}
        keys = json.loads(kp.read_text())
        extra.update(res)
        extra["rows_stored"] = {t: keys.get(t + "_rows") for t in ("erc20_transfers", "erc1155_transfers")}
        return {t: {(h, i) for h, i in keys[t]} for t in ("erc20_transfers", "erc1155_transfers")}, extra
    if tool == "cryo":
        import pyarrow.parquet as pq

        logs = []
        root = work / "cryo"
        files = sorted(root.glob("*/*.parquet")) if root.exists() else []
        for f in files:
            t = pq.read_table(f, columns=["block_number", "log_index", "transaction_hash", "address",
                                          "topic0", "topic1", "topic2"]).to_pydict()
            hx = lambda b: ("0x" + b.hex()) if isinstance(b, (bytes, bytearray)) else b  # noqa: E731
            for i in range(len(t["block_number"])):
                logs.append({"block_number": t["block_number"][i], "log_index": t["log_index"][i],
                             "transaction_hash": hx(t["transaction_hash"][i]), "address": hx(t["address"][i]),
                             "topic0": hx(t["topic0"][i]), "topic1": hx(t["topic1"][i]),
                             "topic2": hx(t["topic2"][i])})
        extra["files"] = len(files)
        extra["logs_written"] = len(logs)
        return classify_logs(logs, spec, spec.first_block, spec.last_block), extra
    if tool == "etl":
        p = work / "etl.csv"
        logs = []
        if p.exists():
            with open(p, newline="") as f:
                for r in csv.DictReader(f):
                    logs.append({"block_number": r["block_number"], "log_index": r["log_index"],
                                 "transaction_hash": r["transaction_hash"], "address": r["token_address"],
                                 "topic0": spec.topic_transfer, "topic1": address_topic(r["from_address"]),
                                 "topic2": address_topic(r["to_address"])})
        extra["logs_written"] = len(logs)
        found = classify_logs(logs, spec, spec.first_block, spec.last_block)
        found["erc1155_transfers"] = None  # not expressible with ethereum-etl (see etl_job.py)
        return found, extra
    raise ValueError(tool)


def run_one(tool: str, settings_name: str, profile: str, job, spec: Spec, truth: dict, minimum: dict,
            pythons: dict, timeout: float, keep: bool = False) -> dict:
    st = dict(SETTINGS[tool].get(settings_name, {})) if isinstance(settings_name, str) else dict(settings_name)
    label = settings_name if isinstance(settings_name, str) else json.dumps(settings_name, sort_keys=True)
    work = Path(tempfile.mkdtemp(prefix=f"peer-{tool}-"))
    out: dict = {"tool": tool, "settings": label, "settings_values": st, "profile": profile,
                 "job": job.label, "when": dt.datetime.now().isoformat(timespec="seconds")}
    try:
        with spawn(profile=profile, **job.spawn_kwargs()) as chain:
            if job.warm:
                warm_up(chain.url, job.start, job.ndays)
            before = chain.stats()
            cmd = tool_command(tool, st, spec, chain.url, job, work, pythons)
            rss_file = work / "rss.txt"
            full = [TIME, "-f", "%M %e %U %S", "-o", str(rss_file), *cmd]
            with open(work / "stdout.txt", "wb") as so, open(work / "stderr.txt", "wb") as se:
                t0 = time.perf_counter()
                p = subprocess.Popen(full, stdout=so, stderr=se, cwd=work, start_new_session=True)
                try:
                    code = p.wait(timeout)
                    out["timed_out"] = False
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    code = p.wait()
                    out["timed_out"] = True
                wall = time.perf_counter() - t0
            after = chain.stats()
        if tool == "ours":  # the stored keys, read back after the clock stopped (as for the peers)
            subprocess.run([PROJECT_PY, str(HERE / "ours_job.py"), "--keys-only", "--data-dir",
                            str(work / "data"), "--out", str(work / "ours_keys.json")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        out["exit_code"] = code
        out["wall"] = wall
        try:
            kb, el, us, sy = rss_file.read_text().strip().splitlines()[-1].split()
            out["peak_rss_mb"] = int(kb) / 1024
            out["cpu_s"] = float(us) + float(sy)
        except Exception:
            out["peak_rss_mb"] = None
        out["getlogs_calls"] = after["getlogs_calls"] - before["getlogs_calls"]
        out["http_requests"] = after["http_requests"] - before["http_requests"]
        out["logs_served"] = after["logs_served"] - before["logs_served"]
        out["errors_served"] = {k: v - before["errors_by_class"].get(k, 0)
                                for k, v in after["errors_by_class"].items()
                                if v - before["errors_by_class"].get(k, 0)}
        found, extra = read_found(tool, work, spec)
        out["extra"] = extra
        out["score"] = score(found, truth) if found else {t: {"expected": len(v), "found": 0, "extra": 0}
                                                          for t, v in truth.items()}
        job_min = sum(minimum[s] for s in JOB_STREAMS)
        out["minimum_job"] = job_min
        out["minimum_all"] = sum(minimum.values())
        if tool == "ours" and "calls_by_stream" in extra:
            job_calls = sum(extra["calls_by_stream"].get(s, 0) for s in JOB_STREAMS)
            out["job_calls"] = job_calls
            out["ratio"] = job_calls / job_min
            out["ratio_all"] = out["getlogs_calls"] / out["minimum_all"]
        else:
            out["job_calls"] = out["getlogs_calls"]
            out["ratio"] = out["getlogs_calls"] / job_min
        found_n = sum((s["found"] or 0) for s in out["score"].values())
        out["job_logs_found"] = found_n
        out["job_logs_per_s"] = found_n / wall
        out["served_logs_per_s"] = out["logs_served"] / wall
        if code != 0 or out.get("timed_out"):
            tail = (work / "stderr.txt").read_bytes()[-1500:].decode(errors="replace")
            out["stderr_tail"] = tail
        if tool == "cryo":
            try:
                out["cryo"] = json.loads((work / "stdout.txt").read_text().strip().splitlines()[-1])
            except Exception:
                pass
        return out
    finally:
        if keep:
            out["workdir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def completeness(r: dict) -> str:
    parts = []
    for t, s in r["score"].items():
        short = "usdc" if t.startswith("erc20") else "ctf"
        if s["found"] is None:
            parts.append(f"{short} n/a")
        else:
            pct = 100 * s["found"] / max(1, s["expected"])
            parts.append(f"{short} {pct:.1f}%" + (f" (+{s['extra']} extra)" if s["extra"] else ""))
    return " · ".join(parts)


def line(r: dict) -> str:
    status = "TIMEOUT" if r.get("timed_out") else (f"exit {r['exit_code']}" if r["exit_code"] else "ok")
    rss = f"{r['peak_rss_mb']:.0f} MB" if r.get("peak_rss_mb") else "?"
    return (f"{TOOL_NAMES[r['tool']]:16s} {r['settings'][:40]:40s} {r['profile']:8s} {status:8s} "
            f"wall {r['wall']:7.1f} s  {r['job_logs_per_s']:9,.0f} job logs/s  calls {r['job_calls']:>8,} "
            f"({r['ratio']:.2f}x min {r['minimum_job']})  rss {rss:>8s}  {completeness(r)}")


def summarise(results: list[dict]) -> None:
    groups: dict = {}
    for r in sorted(results, key=lambda r: (["clean", "alchemy", "hostile"].index(r["profile"])
                                           if r["profile"] in ("clean", "alchemy", "hostile") else 9,
                                           list(TOOL_NAMES).index(r["tool"]), r["settings"])):
        groups.setdefault((r["tool"], r["settings"], r["profile"]), []).append(r)
    print("\nsummary (best wall of the repeats, spread = max/min - 1; completeness = worst repeat;\n"
          "job logs/s = job logs found / wall; served/s = every log the devchain sent / wall)")
    print(f"{'tool':16s} {'settings':40s} {'profile':8s} {'n':>2s} {'best s':>8s} {'spread':>7s} "
          f"{'job logs/s':>11s} {'served/s':>9s} {'calls':>8s} {'x min':>6s} {'RSS MB':>7s}  completeness")
    for (tool, st, prof), rs in groups.items():
        walls = [r["wall"] for r in rs]
        b = min(rs, key=lambda r: r["wall"])
        worst = min(rs, key=lambda r: sum((s["found"] or 0) for s in r["score"].values()))
        spread = max(walls) / min(walls) - 1
        flag = " TIMEOUT" if any(r.get("timed_out") for r in rs) else (
            f" FAILED (exit {max(r['exit_code'] for r in rs)})" if any(r["exit_code"] for r in rs) else "")
        print(f"{TOOL_NAMES[tool]:16s} {st[:40]:40s} {prof:8s} {len(rs):>2d} {b['wall']:8.1f} {100 * spread:6.0f}% "
              f"{b['job_logs_per_s']:11,.0f} {b['served_logs_per_s']:9,.0f} {b['job_calls']:>8,} {b['ratio']:6.2f} "
              f"{max((r.get('peak_rss_mb') or 0) for r in rs):7.0f}  {completeness(worst)}{flag}")
    for (tool, st, prof), rs in groups.items():
        b = min(rs, key=lambda r: r["wall"])
        ph = b.get("extra", {}).get("phases")
        if ph:  # the process's wall minus run_engine's: interpreter, imports, settings
            split = [("start-up", b["wall"] - b["extra"]["wall"]), *ph.items()]
            print(f"{TOOL_NAMES[tool]} on {prof}, best run {b['wall']:.2f} s: "
                  + ", ".join(f"{name} {sec:.2f}" for name, sec in split))


def job_filters(spec: Spec, day_bounds: list[tuple[int, int]]) -> list[dict]:
    """The job's eth_getLogs filters, one per (day, stream) as the cap-free minimum counts them:
    USDC.e Transfer from, and to, a Polymarket contract; the CTF's TransferSingle/Batch."""
    streams = ({"address": spec.usdc, "topics": [spec.topic_transfer, spec.contract_topics]},
               {"address": spec.usdc, "topics": [spec.topic_transfer, None, spec.contract_topics]},
               {"address": spec.ctf, "topics": [spec.topics_1155]})
    return [{**f, "fromBlock": hex(a), "toBlock": hex(b)} for a, b in day_bounds for f in streams]


def serve_floor(job, spec: Spec, repeat: int) -> tuple[float, int]:
    """The provider's floor for the job on this machine: a warmed `clean` devchain serving the
    job's calls, all at once, to a client that only reads the bytes (no tool's work at all).
    Returns (best seconds, bytes served)."""
    import asyncio

    import aiohttp

    filters = job_filters(spec, job.day_bounds)

    async def all_at_once(url: str) -> tuple[float, int]:
        async with aiohttp.ClientSession() as session:
            async def one(i: int, flt: dict) -> int:
                body = {"jsonrpc": "2.0", "id": i, "method": "eth_getLogs", "params": [flt]}
                async with session.post(url, json=body) as resp:
                    return len(await resp.read())
            t0 = time.perf_counter()
            sizes = await asyncio.gather(*(one(i, f) for i, f in enumerate(filters)))
            return time.perf_counter() - t0, sum(sizes)

    with spawn(profile="clean", **job.spawn_kwargs()) as chain:
        warm_up(chain.url, job.start, job.ndays)
        return min(asyncio.run(all_at_once(chain.url)) for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the `small` world instead of four demo days")
    ap.add_argument("--long", type=int, default=None, metavar="DAYS",
                    help="the `full` world's first DAYS days, no warm-up (the provider sets the pace)")
    ap.add_argument("--tools", default="ours,cryo,etl")
    ap.add_argument("--profiles", default="clean,alchemy,hostile")
    ap.add_argument("--settings", default="default,best", help="default,best (ours has only default)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per tool run before it is killed")
    ap.add_argument("--sweep", action="store_true", help="try SWEEP settings on `clean` instead")
    ap.add_argument("--cache", type=Path, default=envs.DEFAULT_CACHE)
    ap.add_argument("--json", type=Path, default=None,
                    help="append each run as a JSON line here (default: <cache>/results.jsonl)")
    ap.add_argument("--report", type=Path, default=None, help="only print the summary of a results file")
    ap.add_argument("--keep", action="store_true", help="keep each run's work dir (outputs, logs)")
    ap.add_argument("--floor", action="store_true",
                    help="also time the devchain alone serving the job's calls to a client that only "
                         "reads the bytes: the provider's share of any tool's wall time")
    a = ap.parse_args()
    if a.report:
        rows = [json.loads(x) for x in a.report.read_text().splitlines() if x.strip()]
        for r in rows:
            if "install_error" in r:
                print(f"{TOOL_NAMES.get(r['tool'], r['tool'])}: could not be installed: {r['install_error']}")
        summarise([r for r in rows if "score" in r])
        return
    if a.json is None:
        a.cache.mkdir(parents=True, exist_ok=True)
        a.json = a.cache / "results.jsonl"

    job = job_for("long", a.long) if a.long else job_for("quick" if a.quick else "demo")
    world = job.world()
    job.start, job.ndays = world.start_date, world.days
    job.label = f"{job.density} {job.start} +{job.ndays}d" + ("" if job.warm else " cold")
    spec = spec_for(world)
    print(f"job: {job.label} blocks {spec.first_block}..{spec.last_block}; computing ground truth ...", flush=True)
    truth = truth_keys(world)
    print(f"expected: {len(truth['erc20_transfers']):,} USDC transfers touching Polymarket, "
          f"{len(truth['erc1155_transfers']):,} CTF transfer logs", flush=True)
    minimums = {p: job_minimum(world, p) for p in a.profiles.split(",")}
    job.day_bounds = [world.day_bounds(d) for d in range(world.days)]
    del world
    if a.floor:
        sec, size = serve_floor(job, spec, max(3, a.repeat))
        print(f"provider floor: the warmed devchain serves the job's {len(job.day_bounds) * 3} calls "
              f"({size / 1e6:.1f} MB) in {sec:.2f} s to a client that only reads them (best of "
              f"{max(3, a.repeat)})", flush=True)

    tools = a.tools.split(",")
    pythons: dict = {}
    for t in tools:
        if t == "ours":
            continue
        try:
            pythons[t] = envs.ensure(t, a.cache)
            print(f"{TOOL_NAMES[t]} {envs.version(t, a.cache)} in {a.cache / t}", flush=True)
        except envs.PeerUnavailable as exc:
            print(f"{TOOL_NAMES[t]}: COULD NOT BE INSTALLED — {exc}", flush=True)
            with open(a.json, "a") as f:
                f.write(json.dumps({"tool": t, "install_error": str(exc)}) + "\n")
    tools = [t for t in tools if t == "ours" or t in pythons]

    plan = []
    if a.sweep:
        for t in tools:
            for st in SWEEP.get(t, []):
                plan.append((t, st, "clean"))
    else:
        for prof in a.profiles.split(","):
            for t in tools:
                for s in a.settings.split(","):
                    if s in SETTINGS[t]:
                        plan.append((t, s, prof))
    results = []
    for t, s, prof in plan:
        for _ in range(a.repeat):
            r = run_one(t, s, prof, job, spec, truth, minimums.get(prof) or job_minimum(job.world(), prof),
                        pythons, a.timeout, a.keep)
            results.append(r)
            print(line(r), flush=True)
            if r.get("workdir"):
                print(f"    kept: {r['workdir']}", flush=True)
            if r.get("stderr_tail") and (r["exit_code"] or r.get("timed_out")):
                print("    stderr: " + r["stderr_tail"].strip().splitlines()[-1][:300], flush=True)
            with open(a.json, "a") as f:
                f.write(json.dumps(r, default=str) + "\n")
            if r.get("timed_out"):
                break  # no point repeating a run that hit the time limit
    summarise(results)


if __name__ == "__main__":
    main()
