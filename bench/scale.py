"""The full history at once: the `full` world (1048 days from 2023-01-01, 5k-50k relevant logs a
day), backfilled end to end over loopback into embedded chDB, then rebuilt.

    .venv/bin/python bench/scale.py                      # all 1048 days, alchemy profile (10K cap)
    .venv/bin/python bench/scale.py --days 300           # the first 300 days of the same world
    .venv/bin/python bench/scale.py --profile clean --no-rebuild

Prints total logs, eth_getLogs / all RPC calls, wall time, logs/s, the engine's peak RSS sampled
over the run (at 10 %, 50 % and 100 % of the days COMPLETE: flat as days grow?), the devchain
child's CPU time and memory, the rebuild's steps, and the wall time the same calls would need at
25 requests/s (the runbook's providers) next to the runbook's "2-5 hours". With --days N < 1048
it also extrapolates to the whole 1048 days from the world's per-day targets, and says so.

Why `alchemy` by default: the 25 rps projection is about a real provider, and a real provider
caps responses (10K logs), which multiplies the calls on busy days; `clean` would understate it.
Unlike bench/ingest.py there is no warm-up: the `full` world keeps only 12 generated days in
memory, so each day is generated when first asked for — the devchain's CPU is reported apart.
Figures, never assertions. JSON of the figures goes to --json (default /tmp/bench-scale.json, outside the repo).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.devchain.density import DENSITIES  # noqa: E402
from console.devchain.faults import get_profile  # noqa: E402
from console.devchain.process import spawn  # noqa: E402
from console.engine.launch import run_engine  # noqa: E402
from console.settings import load_settings  # noqa: E402

RUNBOOK_HOURS = (2.0, 5.0)
RUNBOOK_RPS = 25.0
TICK = float(os.sysconf("SC_CLK_TCK"))


def proc_rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB from /proc."""
    rss = hwm = 0.0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm


def stat_cpu_s(path: str) -> tuple[str, float]:
    """(name, user + system CPU seconds) from a /proc .../stat file (a process's or a thread's)."""
    with open(path) as f:
        head, rest = f.read().rsplit(")", 1)
    parts = rest.split()
    return head.split("(", 1)[1], (int(parts[11]) + int(parts[12])) / TICK


def proc_cpu_s(pid: int) -> float:
    try:
        return stat_cpu_s(f"/proc/{pid}/stat")[1]
    except OSError:
        return float("nan")


def thread_cpu_s() -> dict[int, tuple[str, float]]:
    """{tid: (thread name, CPU seconds)} of every thread of this process now, from /proc; a
    Python thread by its `threading` name (the kernel calls them all `python`)."""
    py_names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            name, cpu = stat_cpu_s(f"/proc/self/task/{tid}/stat")
        except (OSError, IndexError, ValueError):  # the thread ended meanwhile
            continue
        out[int(tid)] = (py_names.get(int(tid)) or name, cpu)
    return out


def cpu_by_thread_group(threads: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per thread name with its numbers dropped (chDB's pools name each thread
    `Name12`; clickhouse-connect's store thread is `clickhouse_0`), largest first."""
    groups: dict[str, float] = {}
    for name, cpu in threads.values():
        key = name.split("-", 1)[0].rstrip("0123456789_") or name
        groups[key] = groups.get(key, 0.0) + cpu
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))


class Sampler(threading.Thread):
    """Every `interval` s: our RSS, the devchain's RSS, days COMPLETE, and each of our threads'
    CPU so far (a thread's last reading counts: one that lived less than `interval` is missed)."""

    def __init__(self, holder: dict, chain_pid: int, interval: float, days: int):
        super().__init__(daemon=True, name="rss-sampler")
        self.holder, self.chain_pid, self.interval, self.days = holder, chain_pid, interval, days
        self.samples: list[tuple[float, int, float, float]] = []  # (t, days done, our MB, chain MB)
        self.threads: dict[int, tuple[str, float]] = {}
        self.threads_at_backfill_end: dict[int, tuple[str, float]] | None = None
        self.stop = threading.Event()
        self.t0 = time.perf_counter()

    def days_done(self) -> int:
        sup = self.holder.get("sup")
        if sup is None:
            return 0
        try:
            return sum(1 for d in list(sup.days.values()) if d.status == "COMPLETE")
        except Exception:
            return self.samples[-1][1] if self.samples else 0

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.perf_counter() - self.t0, self.days_done(),
                                 proc_rss_mb()[0], proc_rss_mb(self.chain_pid)[0]))
            self.threads.update(thread_cpu_s())
            if self.threads_at_backfill_end is None and self.samples[-1][1] >= self.days:
                self.threads_at_backfill_end = dict(self.threads)
            self.stop.wait(self.interval)


def rss_at(samples, days: int, frac: float) -> tuple[float, float] | None:
    """Our peak RSS up to the moment `frac` of the days were COMPLETE (and that moment)."""
    need = max(1, round(days * frac))
    peak = 0.0
    for t, done, mb, _ in samples:
        peak = max(peak, mb)
        if done >= need:
            return peak, t
    return None


async def stored_minimum(settings, days: int, cap: int | None) -> dict[str, int]:
    """The cap-bound minimum eth_getLogs calls (as bench/ingest.py's minimum_calls) computed from
    the rows the engine stored — generating the world again here would cost as much as the run.
    Per (day, stream): max(1, ceil(matching logs / cap)); exact when the stored rows are complete."""
    from console.engine.store import Store

    prof = settings.profile()
    start = settings.start_date
    contracts = sorted(set(prof.known_contracts(start)))
    inlist = ",".join(f"'{c}'" for c in contracts)
    q = {
        "usdc_from": f"SELECT day_idx, count() FROM {{db}}.erc20_transfers FINAL WHERE from_address IN ({inlist}) GROUP BY day_idx",
        "usdc_to": f"SELECT day_idx, count() FROM {{db}}.erc20_transfers FINAL WHERE to_address IN ({inlist}) GROUP BY day_idx",
        "ctf_transfers": "SELECT day_idx, uniqExact(tx_hash, log_index) FROM {db}.erc1155_transfers FINAL GROUP BY day_idx",
        "ctf_resolutions": "SELECT day_idx, count() FROM {db}.condition_resolutions FINAL GROUP BY day_idx",
        "token_registrations": "SELECT day_idx, count() FROM {db}.token_registrations FINAL GROUP BY day_idx",
    }
    store = await Store.open(settings.dsn, settings.database, apply_schema=False)
    try:
        out = {}
        for name, sql in q.items():
            per_day = dict(await store.query(sql))
            out[name] = sum(max(1, -(-int(per_day.get(d, 0)) // cap) if cap else 1) for d in range(days))
        return out
    finally:
        await store.close()


async def run_rebuild(settings, sup) -> dict:
    """console.engine.rebuild.rebuild on the store the engine filled (its own timing)."""
    try:
        from console.engine.rebuild import rebuild
    except Exception as exc:  # still being written by someone else
        return {"skipped": f"console.engine.rebuild.rebuild not importable: {type(exc).__name__}: {exc}"}
    from console.engine.store import Store

    store = await Store.open(settings.dsn, settings.database, apply_schema=False)
    try:
        kw: dict = {"run_stats": sup.run_stats() if hasattr(sup, "run_stats") else {}}
        params = inspect.signature(rebuild).parameters
        if "streams" in params:
            kw["streams"] = sorted({s.name for s in settings.profile().streams(sup.start_date, settings.usdc_scope)})
        if "run_id" in params:
            kw["run_id"] = "bench-scale"
        t0 = time.perf_counter()
        out = await rebuild(store, settings.profile(), settings.gates, Path(settings.data_dir), **kw)
        wall = time.perf_counter() - t0
        steps = [{"step": s.index, "name": s.name, "state": s.state, "seconds": s.seconds,
                  "detail": (s.detail or "")[:300]} for s in (getattr(out, "steps", None) or [])]
        return {"wall": wall, "ok": getattr(out, "ok", None), "exit_code": getattr(out, "exit_code", None),
                "reason": getattr(out, "reason", None), "steps": steps}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=DENSITIES["full"].default_days)
    ap.add_argument("--profile", default="alchemy")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--max-concurrency", type=int, default=None)
    ap.add_argument("--monitor-interval", type=float, default=None, help="engine monitor period (default 30 s)")
    ap.add_argument("--no-rebuild", action="store_true")
    ap.add_argument("--data-dir", default=None, help="default: a temporary directory, removed after")
    ap.add_argument("--sample-interval", type=float, default=1.0)
    ap.add_argument("--json", type=Path, default=Path(tempfile.gettempdir()) / "bench-scale.json")
    a = ap.parse_args()

    dens = DENSITIES["full"]
    start, all_days = dens.default_start, dens.default_days
    days = min(a.days, all_days)
    tmp = None
    if a.data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-scale-")
        data_dir = Path(tmp.name) / "data"
    else:
        data_dir = Path(a.data_dir)
    holder: dict = {}
    print(f"full world seed {a.seed}: {days} of {all_days} days from {start} · profile {a.profile} · "
          f"shards {a.shards}", flush=True)
    t_spawn = time.perf_counter()
    with spawn(density="full", profile=a.profile, seed=a.seed, timeout=600) as chain:
        spawn_s = time.perf_counter() - t_spawn
        chain_cpu0 = proc_cpu_s(chain.pid)
        settings = load_settings({
            "rpc_url": chain.url, "start_date": start.isoformat(), "days": days, "data_dir": str(data_dir),
            "shards": a.shards, "no_rebuild": True, "usdc_scope": "polymarket", "gate_interval": 86400,
            "max_concurrency": a.max_concurrency, "stall_seconds": 900, "monitor_interval": a.monitor_interval,
        })
        sampler = Sampler(holder, chain.pid, a.sample_interval, days)
        sampler.start()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        code = asyncio.run(run_engine(settings, on_ready=lambda sup: holder.setdefault("sup", sup),
                                      say=lambda m: None))
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        served = chain.stats()
        chain_cpu = proc_cpu_s(chain.pid) - chain_cpu0
        chain_rss, chain_hwm = proc_rss_mb(chain.pid)
    engine_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    sup = holder["sup"]
    st = sup.rpc.stats
    logs = st.logs_received
    all_calls = sum(st.calls_by_method.values())
    fetch = (max(sup._completed_times) - sup._started) if sup._completed_times else wall
    # sampler clock started just before the engine: [0, fetch] backfill, (fetch, wall] closing gates
    # (+ store start-up before), then the rebuild
    res: dict = {
        "days": days, "profile": a.profile, "exit_code": code, "wall": wall, "backfill_phase_s": fetch,
        "engine_cpu_s": engine_cpu,
        "logs": logs, "getlogs_calls": st.getlogs_calls, "all_calls": all_calls,
        "calls_by_method": dict(st.calls_by_method), "calls_by_stream": dict(sup.ctx.calls_by_stream),
        "oversize_failures": st.oversize_failures, "errors": dict(st.errors_by_class),
        "parse_s": st.parse_seconds, "decode_s": sup.ctx.decode_seconds, "insert_s": sup.writer.insert_seconds,
        "devchain": {"spawn_s": spawn_s, "cpu_s": chain_cpu, "rss_mb": chain_rss,
                     "peak_rss_mb": chain_hwm, "served": served},
    }
    print(f"exit code            {code}")
    print(f"wall                 {wall:9.1f} s  ({wall / 60:.1f} min; backfill phase {fetch:.1f} s, the rest is "
          f"store start-up and the closing relaxed gates)")
    print(f"logs                 {logs:>12,}   -> {logs / wall:,.0f} logs/s end to end, "
          f"{logs / fetch:,.0f} logs/s backfill phase")
    print(f"engine CPU           {engine_cpu:.0f} s ({100 * engine_cpu / wall:.0f}% of one core; "
          f"{1e6 * engine_cpu / max(1, logs):.0f} us per log)")
    print(f"breakdown            parse {st.parse_seconds:.1f} s · decode {sup.ctx.decode_seconds:.1f} s · "
          f"insert {sup.writer.insert_seconds:.1f} s (store thread)")
    sampler.threads.update(thread_cpu_s())
    fetched = sampler.threads_at_backfill_end or sampler.threads
    res["cpu_by_thread"] = {"backfill": cpu_by_thread_group(fetched), "after": cpu_by_thread_group(
        {t: (n, c - fetched.get(t, (n, 0.0))[1]) for t, (n, c) in sampler.threads.items()})}
    for phase, groups in res["cpu_by_thread"].items():
        print(f"CPU by thread, {phase:8s} " + " · ".join(f"{k} {v:.1f} s" for k, v in list(groups.items())[:6]))
    print("                     (MainThread: asyncio, HTTP, parse, decode; clickhouse: the store thread, "
          "inserts and queries; ThreadPool, MergeMutate, ...: chDB's own pools)")
    print(f"eth_getLogs calls    {st.getlogs_calls:,} ({st.oversize_failures} oversize failures) · all RPC calls "
          f"{all_calls:,} {dict(st.calls_by_method)}")
    for frac in (0.1, 0.5, 1.0):
        r = rss_at(sampler.samples, days, frac)
        if r:
            print(f"peak RSS at {int(frac * 100):3d}%     {r[0]:8.0f} MB  (days COMPLETE reached {int(frac * 100)}% "
                  f"at {r[1]:.0f} s)")
            res[f"rss_at_{int(frac * 100)}"] = r[0]
    res["peak_rss_backfill_mb"] = proc_hwm_before = max((x[2] for x in sampler.samples if x[0] <= fetch), default=0)
    res["peak_rss_closing_gates_mb"] = max((x[2] for x in sampler.samples if fetch < x[0] <= wall), default=0)
    res["peak_rss_engine_mb"] = proc_rss_mb()[1]  # VmHWM so far: the whole engine run
    print(f"engine peak RSS      {res['peak_rss_engine_mb']:8.0f} MB (VmHWM: engine + embedded chDB, whole run) · "
          f"sampled every {a.sample_interval:g} s: backfill phase {proc_hwm_before:.0f} MB, closing gates "
          f"{res['peak_rss_closing_gates_mb']:.0f} MB")
    print(f"devchain child       CPU {chain_cpu:.0f} s over the run ({100 * chain_cpu / wall:.0f}% of one core), "
          f"RSS {chain_rss:.0f} MB, peak {chain_hwm:.0f} MB, start-up {spawn_s:.1f} s")
    at25 = all_calls / RUNBOOK_RPS
    res["at_25rps_s"] = at25
    print(f"at {RUNBOOK_RPS:g} rps             {at25:9.0f} s = {at25 / 3600:.2f} h for these {all_calls:,} calls "
          f"(runbook: {RUNBOOK_HOURS[0]:g}-{RUNBOOK_HOURS[1]:g} h; target <= {RUNBOOK_HOURS[0] / 3 * 60:.0f} min); "
          f"eth_getLogs alone {st.getlogs_calls / RUNBOOK_RPS:.0f} s")
    if days < all_days:
        # extrapolate with the world's own per-day targets (cheap: no day is generated)
        from console.devchain.world import build_world

        w = build_world("full", seed=a.seed)
        tgt = [w.day_plan(d)["target"] for d in range(all_days)]
        k = sum(tgt) / sum(tgt[:days])
        res["extrapolation"] = {"factor": k, "logs": logs * k, "wall": wall * k, "all_calls": all_calls * k,
                                "at_25rps_s": at25 * k}
        print(f"EXTRAPOLATED to {all_days} days (x{k:.2f} by the world's per-day log targets, not measured): "
              f"~{logs * k / 1e6:.1f} M logs, ~{wall * k / 60:.0f} min wall at the same logs/s, "
              f"~{all_calls * k:,.0f} calls -> {at25 * k / 3600:.2f} h at {RUNBOOK_RPS:g} rps")
    if not a.no_rebuild and code == 0:
        print("rebuild ...", flush=True)
        t_rb = time.perf_counter() - sampler.t0
        rb = asyncio.run(run_rebuild(settings, sup))
        res["rebuild"] = rb
        if "skipped" in rb or "error" in rb:
            print(f"rebuild              {rb.get('skipped') or rb.get('error')}")
        else:
            print(f"rebuild              {rb['wall']:.1f} s, ok={rb['ok']} exit={rb['exit_code']}"
                  + (f" ({rb['reason']})" if rb.get("reason") else ""))
            for s in rb["steps"]:
                print(f"  step {s['step']} {s['name']:24s} {s['state']:8s} {s['seconds'] or 0:7.1f} s  {s['detail'][:110]}")
        res["peak_rss_rebuild_mb"] = max((x[2] for x in sampler.samples if x[0] >= t_rb), default=0)
        res["peak_rss_mb_after_rebuild"] = proc_rss_mb()[1]
        print(f"peak RSS             rebuild (sampled) {res['peak_rss_rebuild_mb']:.0f} MB · VmHWM incl. rebuild "
              f"{res['peak_rss_mb_after_rebuild']:.0f} MB")
    sampler.stop.set()
    sampler.join()
    res["rss_samples"] = sampler.samples[:: max(1, len(sampler.samples) // 600)]
    cap = get_profile(a.profile).cap
    try:  # last: its queries over every stored row are ours, not the engine's (RSS already taken)
        mins = asyncio.run(stored_minimum(settings, days, cap))
        res["minimum_calls"] = mins
        by = sup.ctx.calls_by_stream
        print(f"minimum calls        {sum(mins.values()):,} at cap {cap or 'none'} (from the stored rows) -> ratio "
              f"{st.getlogs_calls / max(1, sum(mins.values())):.3f}; per stream "
              + " · ".join(f"{k} {by.get(k, 0)}/{v}" for k, v in mins.items()))
    except Exception as exc:
        print(f"minimum calls        could not be computed from the store: {type(exc).__name__}: {exc}")
    a.json.write_text(json.dumps(res, indent=1, default=str))
    print(f"figures -> {a.json}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
