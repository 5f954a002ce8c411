"""Where our engine's CPU goes on the peers' job: py-spy over every thread, grouped by hot-path stage.

    .venv/bin/pip install py-spy        # once (a binary wheel)
    .venv/bin/python bench/peers/profile.py [--quick] [--profile clean] [--rate 200] [--raw OUT.txt]

Starts the devchain with the job's world (bench/peers/job.py), warms it up (bench/ingest.py),
then samples bench/peers/ours_job.py — the engine process alone, chDB included — with
`py-spy record --threads` (CPU samples only: a thread waiting on I/O is not sampled). Each sample
is put in the first matching stage, looking from the leaf up:

  json parse   the eth_getLogs body into typed logs           (wire.read_logs_reply; orjson elsewhere)
  decode       decode_erc20 / decode_erc1155 / ShardWorker._decode
  insert       the store thread: clickhouse-connect's insert path and chDB's query (native)
  http         aiohttp client: reading and assembling the response
  imports      module imports (start-up, and pandas pulled in by the first insert)
  store start  chDB session, schema, state tables
  sqlite mirror  the state mirror (aiosqlite thread)
  bench        ours_job.py reading the stored keys back after the run (not the engine)
  other        the rest (asyncio loop, scheduling, ledger, SQLite mirror, gates)

Prints the share of samples per stage and per thread, and the heaviest frames of each stage.
py-spy slows the sampled process a little; the shares matter, not the seconds.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from job import job_for  # noqa: E402
from ingest import warm_up  # noqa: E402

from console.devchain.process import spawn  # noqa: E402

STAGES = [  # (stage, regex on one frame), matched from the leaf towards the root
    ("bench", re.compile(r"stored_keys")),  # ours_job.py reading the keys back: not the engine
    ("json parse", re.compile(r"orjson|\bloads\b|read_logs_reply")),
    ("decode", re.compile(r"decode_erc20|decode_erc1155|decode_resolution|decode_registration|ShardWorker\._decode")),
    ("imports", re.compile(r"_find_and_load|exec_module")),
    ("insert", re.compile(r"insert_columns|Client\.insert|ChdbBackend|data_insert|Connection\.query|InsertContext")),
    ("http", re.compile(r"aiohttp|StreamReader|HttpResponseParser|ClientResponse|_request")),
    ("store start", re.compile(r"Store\.open|apply_schema|_connect_sync")),
    ("sqlite mirror", re.compile(r"aiosqlite|sqlite3|Mirror")),
]


_IMPORTS = re.compile(r"_find_and_load|exec_module")


def classify(frames: list[str]) -> str:
    names = [re.sub(r" \(.*?\)$", "", f) for f in frames]
    # imports win wherever they are (a lazy import inside insert is start-up cost, not insert)
    if any(_IMPORTS.search(n) for n in names):
        return "imports"
    if any(STAGES[0][1].search(n) for n in names):
        return "bench"
    # orjson.loads is C: py-spy (without --native) charges it to its caller's line in _post,
    # the only CPU-heavy line there (reading the body shows aiohttp frames)
    if names and names[-1] == "RpcClient._post":
        return "json parse"
    for n in reversed(names):
        for stage, rx in STAGES:
            if stage != "imports" and rx.search(n):
                return stage
    return "other"


def aggregate(raw: Path) -> None:
    stage = collections.Counter()
    by_thread = collections.Counter()
    frames = collections.defaultdict(collections.Counter)
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, n = line.rsplit(" ", 1)
        n = int(n)
        parts = stack.split(";")
        thread = re.sub(r"thread \(\d+\):?\s*", "", parts[0]) or "main"
        thread = re.sub(r"\d+", "N", thread)
        s = classify(parts[1:])
        stage[s] += n
        by_thread[thread] += n
        leaf = re.sub(r" \(.*?\)$", "", parts[-1]) if len(parts) > 1 else "?"
        frames[s][leaf] += n
        total += n
    print(f"{total:,} CPU samples")
    print("by stage:")
    for s, n in stage.most_common():
        top = ", ".join(f"{f} {100 * c / total:.1f}%" for f, c in frames[s].most_common(4))
        print(f"  {s:12s} {100 * n / total:5.1f}%   (leaf frames: {top})")
    print("by thread:")
    for t, n in by_thread.most_common(6):
        print(f"  {t[:40]:40s} {100 * n / total:5.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", default="clean")
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--raw", type=Path, default=None, help="keep py-spy's raw (collapsed) stacks here")
    ap.add_argument("--aggregate", type=Path, default=None, help="only aggregate an existing raw file")
    a = ap.parse_args()
    if a.aggregate:
        aggregate(a.aggregate)
        return
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    job = job_for("quick" if a.quick else "demo")
    world = job.world()
    start, days = world.start_date, world.days
    del world
    work = Path(tempfile.mkdtemp(prefix="peer-prof-"))
    raw = a.raw or work / "raw.txt"
    try:
        with spawn(profile=a.profile, **job.spawn_kwargs()) as chain:
            warm_up(chain.url, start, days)
            cmd = [pyspy, "record", "-r", str(a.rate), "--threads", "--format", "raw", "-o", str(raw), "--",
                   sys.executable, str(HERE / "ours_job.py"), "--url", chain.url, "--start-date", start.isoformat(),
                   "--days", str(days), "--data-dir", str(work / "data"), "--out", str(work / "ours.json")]
            subprocess.run(cmd, cwd=work, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        aggregate(raw)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
