"""Our engine on the job, as its own process (so its peak RSS is its own, chDB included).

Runs `console.engine.launch.run_engine` the way bench/ingest.py does (headless, no rebuild,
embedded chDB in a fresh data dir) against an already running devchain URL and writes its
figures as JSON to --out. `--keys-only` is the scorer's second, untimed call: it reads back the
(tx_hash, log_index) keys stored in --data-dir (as the scorer reads cryo's parquet files and
ethereum-etl's CSV after the clock stops) and writes them as JSON to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from console.engine.launch import run_engine  # noqa: E402
from console.engine.store import Store  # noqa: E402
from console.settings import load_settings  # noqa: E402


async def stored_keys(dsn: str) -> dict[str, list]:
    store = await Store.open(dsn, apply_schema=False)
    try:
        out = {}
        for table in ("erc20_transfers", "erc1155_transfers"):
            rows = await store.query(f"SELECT DISTINCT tx_hash, log_index FROM {{db}}.{table} FINAL")
            out[table] = [[str(t).lower(), int(i)] for t, i in rows]
            out[table + "_rows"] = (await store.query(f"SELECT count() FROM {{db}}.{table} FINAL"))[0][0]
        return out
    finally:
        await store.close()


# (phase, the engine event that ends it); each phase starts where the one before it ended
PHASE_ENDS = (
    ("open", "run started"),  # preflight, lock, state, chDB session and schema
    ("backfill", "backfill complete"),  # every day fetched, decoded, stored, COMPLETE
    ("compaction", "relaxed gates started"),  # the source tables merged before the checks
    ("closing gates", None),  # to the end of run_engine
)


def phases(events, began: float, ended: float) -> dict[str, float]:
    """Seconds per phase of run_engine, from the engine's own event log (the clock the operator
    sees): where the fixed costs are, next to the per-log work of the backfill."""
    marks = {}
    for e in events:
        for _, prefix in PHASE_ENDS:
            if prefix and prefix not in marks and e.message.startswith(prefix):
                marks[prefix] = e.at.timestamp()
    out, start = {}, began
    for name, prefix in PHASE_ENDS:
        end = marks.get(prefix, ended) if prefix else ended
        out[name] = round(end - start, 3)
        start = end
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--start-date")
    ap.add_argument("--days", type=int)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--keys-only", action="store_true")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--max-concurrency", type=int, default=None)
    ap.add_argument("--rps", type=float, default=None)
    a = ap.parse_args()
    if a.keys_only:
        dsn = f"chdb://{Path(a.data_dir) / 'clickhouse'}"
        Path(a.out).write_text(json.dumps(asyncio.run(stored_keys(dsn))))
        return
    settings = load_settings({
        "rpc_url": a.url, "start_date": a.start_date, "days": a.days, "data_dir": a.data_dir,
        "shards": a.shards, "no_rebuild": True, "rps": a.rps, "max_concurrency": a.max_concurrency,
        "usdc_scope": "polymarket", "gate_interval": 86400,
    })
    holder: dict = {}
    t0, began = time.perf_counter(), time.time()
    code = asyncio.run(run_engine(settings, on_ready=lambda sup: holder.setdefault("sup", sup),
                                  say=lambda m: None))
    wall = time.perf_counter() - t0
    sup = holder.get("sup")
    res: dict = {"exit_code": code, "wall": wall}
    if sup is not None:
        st = sup.rpc.stats
        fetch = (max(sup._completed_times) - sup._started) if sup._completed_times else wall
        res.update(
            logs_received=st.logs_received, getlogs_calls=st.getlogs_calls,
            calls_by_stream=dict(sup.ctx.calls_by_stream), oversize_failures=st.oversize_failures,
            errors=dict(st.errors_by_class), all_calls=sum(st.calls_by_method.values()),
            parse_s=st.parse_seconds, decode_s=sup.ctx.decode_seconds, insert_s=sup.writer.insert_seconds,
            backfill_phase_s=fetch, phases=phases(sup.events, began, began + wall),
        )
    Path(a.out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
