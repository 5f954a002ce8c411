"""Safety gates (DESIGN §6.8): relaxed during the backfill, strict before the rebuild.

Each gate is one SQL file in `console/sql/gates/` returning one row `(value, n, detail)`
(a file with two statements starts with a cheap screen returning `(clean, n)`; the exact
query runs only when the screen is not clean — see duplicates.sql and infra_balance.sql):
`value` is compared with the threshold, `n` is how much data the gate saw (0 -> "no data
yet": the gate passes, so a relaxed run early in the backfill is not a false alarm), and
`detail` says what is wrong when it fails.

| gate            | value                                          | pass                 |
|-----------------|------------------------------------------------|----------------------|
| coverage        | tiled COMPLETE days / COMPLETE days            | >= thresholds.coverage (1.0) |
| duplicates      | keys with >1 distinct content in the raw rows  | == 0                 |
| high_confidence | HIGH share of BUY/SELL net flows               | >= 0.60 / 0.80       |
| sane_price      | share of clean trades with 0 < p <= 1          | >= 0.80 / 0.95       |
| infra_balance   | (tx, exchange/adapter, asset) with net != 0    | == 0                 |

The net-flow gates read the classified flows from the view `net_flows_live`
(console/sql/rebuild/00_views.sql, the very SQL rebuild step 1 materialises) or, inside the
rebuild, from the staging table step 1 just filled — never a second copy of the rules.
In relaxed mode the data gates only look at COMPLETE days (a day being fetched is partial by
nature); in strict mode they look at everything.

A gate whose query fails is a failed gate (value 0, detail "❌ Error: ..."): a safety check
that could not run must not let a rebuild through.

Memory (issue 8: the whole run < 1 GB RSS). On the embedded store chDB runs inside the engine's
process, and evaluating the view `net_flows_live` in one query (a GROUP BY over every transfer
row, spilled to disk and merged back) peaked at ~1.8 GB on 20 M rows — twice per run, once per
net-flow gate. There, the net-flow gates read a session TEMPORARY table filled from the view
once per run, by the rebuild's own step-1 INSERT (console/sql/rebuild/01_net_flows.sql) in
tx-hash ranges of ~FLOW_CHUNK_ROWS transfer rows, as step 1 does: the same rows, each chunk
reading and aggregating only its own txs (see tx_range). A server store keeps its memory to
itself and reads the view directly (several hosts may share it; a temporary table is per
session). One gate run at a time
per store (a lock), so two runs never share the scratch table or add up their peaks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

from console.engine.events import GateResult
from console.engine.logs import error as log_error
from console.protocol import ZERO_ADDRESS, ProtocolProfile, is_address
from console.settings import GateThresholds
from console.sql import load, statements

Mode = Literal["relaxed", "strict"]

LIVE_FLOWS = "{db}.net_flows_live"
STAGING_FLOWS = "{db}.net_flows_staging"
VIEWS_SQL = "rebuild/00_views.sql"
FLOWS_SQL = "rebuild/01_net_flows.sql"  # truncate + INSERT ... SELECT FROM net_flows_live WHERE {chunk}
GATE_FLOWS = "gate_net_flows"  # the session TEMPORARY table of the net-flow gates (embedded store)
FLOW_GATES = ("high_confidence", "sane_price")  # the gates that read {flows}
# Transfer rows per chunk when the net flows are materialised (here and in rebuild step 1).
# A chunk is a tx-hash range, so it reads only its own rows (the primary key's prefix): a
# small chunk costs ~0.3 s of fixed work, not a scan of the whole store. Measured on the
# 1048-day store (21 M transfer rows, a fresh process, RSS above its ~0.35 GB base): one
# SELECT of 1/6 of the txs by hash +535 MB in 21 s (every chunk read every row); by range
# 1/16 +322 MB in 3.2 s, 1/64 +270 MB, 1/256 +174 MB in 0.5 s. The whole closing gates:
# 6 hash chunks peaked at 895 MB in 117 s, 22 ranges of 1 M rows at 859 MB in 96 s, 86 ranges
# of 250 K rows at 747 MB in 113 s (bench/memory.py).
FLOW_CHUNK_ROWS = 250_000
MAX_RANGE_CHUNKS = 4096  # tx_range splits on 4 hex digits
# The tables the net flows (and so the flow gates and the rebuild) read with FINAL.
SOURCE_TABLES = ("erc20_transfers", "erc1155_transfers", "condition_resolutions", "token_registrations")
# A source table is compacted (compact_sources) only from this many rows: below it a FINAL read
# of its parts side by side costs a few MB (1M USDC rows in 10 parts: +9-13 MB, in one part +6),
# and the merge is pure cost (~0.2 s of a 3 s run on the 4-day peers job of bench/peers, 150K
# rows: the sixth round's regression there).
COMPACT_MIN_ROWS = 1_000_000
_COMPLETE_DAYS = "day_idx IN (SELECT day_idx FROM {db}.backfill_checkpoint WHERE status = 'COMPLETE')"
_locks: "weakref.WeakKeyDictionary[object, asyncio.Lock]" = weakref.WeakKeyDictionary()
_views_applied: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class GateSpec:
    name: str
    file: str
    comparator: str  # ">=" or "=="
    threshold: Callable[[GateThresholds, str], float]
    empty_value: float  # the value reported when the gate saw no data


GATES: tuple[GateSpec, ...] = (
    GateSpec("coverage", "gates/coverage.sql", ">=", lambda t, m: t.coverage, 1.0),
    GateSpec("duplicates", "gates/duplicates.sql", "==", lambda t, m: 0.0, 0.0),
    GateSpec("high_confidence", "gates/high_confidence.sql", ">=",
             lambda t, m: t.high_confidence_strict if m == "strict" else t.high_confidence_relaxed, 1.0),
    GateSpec("sane_price", "gates/sane_price.sql", ">=",
             lambda t, m: t.sane_price_strict if m == "strict" else t.sane_price_relaxed, 1.0),
    GateSpec("infra_balance", "gates/infra_balance.sql", "==", lambda t, m: 0.0, 0.0),
)
DUPLICATES = next(g for g in GATES if g.name == "duplicates")
GATE_NAMES = tuple(g.name for g in GATES)


# --- rendering the profile into SQL ---------------------------------------------------------
def _array(addresses) -> str:
    items = sorted({a.lower() for a in addresses})
    for a in items:
        if not is_address(a):  # addresses come from validated settings; never inject text
            raise ValueError(f"not an address: {a!r}")
    return "[" + ", ".join(f"'{a}'" for a in items) + "]" if items else "['']"


def _names(names: Sequence[str]) -> str:
    for n in names:
        if not n.replace("_", "").isalnum():  # stream names come from the profile; never text
            raise ValueError(f"not a stream name: {n!r}")
    return "[" + ", ".join(f"'{n}'" for n in sorted(set(names))) + "]" if names else "CAST([], 'Array(String)')"


def render(sql: str, profile: ProtocolProfile, *, flows: str = LIVE_FLOWS,
           complete_days_only: bool = False, streams: Sequence[str] = ()) -> str:
    """Fill the profile placeholders of a gate/rebuild SQL file (`{db}` is left to the store).

    `streams`: the stream names every COMPLETE day must have in its ledger (the run's
    `profile.streams(...)`); empty = only check the streams that are there.
    """
    watched = tuple(d.address for d in profile.exchanges + profile.adapters)
    return (
        sql.replace("{flows}", flows)
        .replace("{expected_streams}", _names(streams))
        .replace("{complete_days}", _COMPLETE_DAYS if complete_days_only else "1")
        .replace("{collateral}", _array(profile.all_collateral()))
        .replace("{ctf}", _array(d.address for d in profile.ctf))
        .replace("{infra}", _array(profile.infrastructure()))
        .replace("{watched}", _array(watched))
        .replace("{zero}", f"'{ZERO_ADDRESS}'")
    )


async def ensure_views(store, profile: ProtocolProfile) -> None:
    """(Re)create the shared classification views for this profile; idempotent.

    Not free (~0.25 s: ClickHouse analyses the classification query), so a store remembers the
    SQL it last applied and the periodic gates and the rebuild skip it when nothing changed.
    """
    sql = render(load(VIEWS_SQL), profile)
    if _views_applied.get(store) == sql:
        return
    for stmt in statements(sql):
        await store.command(stmt)
    _views_applied[store] = sql


async def flow_chunks(store) -> int:
    """How many tx-hash ranges materialising the net flows takes (~FLOW_CHUNK_ROWS rows each)."""
    rows = (await store.query("SELECT (SELECT count() FROM {db}.erc20_transfers) + "
                              "(SELECT count() FROM {db}.erc1155_transfers)"))[0][0]
    return min(MAX_RANGE_CHUNKS, max(1, -(-int(rows) // FLOW_CHUNK_ROWS)))


def chunk_filter(k: int, chunks: int, column: str) -> str:
    """Chunk k of `chunks`, by the hash of `column` (wallet for positions: they are per wallet);
    exact, but every chunk reads every row — for a table not sorted by `column`."""
    return "1" if chunks == 1 else f"cityHash64({column}) % {chunks} = {k}"


def tx_range(k: int, chunks: int) -> str:
    """Chunk k of `chunks` as a tx_hash range: net flows are per tx, so the chunks are exact,
    and the transfer tables are sorted by tx_hash, so a chunk reads only its own granules.

    Bounds are 4-hex-digit prefixes ('0x4000' …) cut evenly (transaction hashes are uniform);
    the first chunk has no lower bound and the last no upper bound, so every string, however
    odd, falls in exactly one chunk.
    """
    if chunks <= 1:
        return "1"
    if chunks > MAX_RANGE_CHUNKS:
        raise ValueError(f"at most {MAX_RANGE_CHUNKS} tx_hash ranges, not {chunks}")
    bound = [f"'0x{(i << 16) // chunks:04x}'" for i in range(chunks + 1)]
    parts = ([f"tx_hash >= {bound[k]}"] if k > 0 else []) + \
            ([f"tx_hash < {bound[k + 1]}"] if k < chunks - 1 else [])
    return " AND ".join(parts)


async def fill_flows(store, profile: ProtocolProfile, target: str, *,
                     where: str | None = None) -> int:
    """INSERT net_flows_live into `target` (rows matching `where`), chunk by chunk with rebuild
    step 1's statement (console/sql/rebuild/01_net_flows.sql); returns the number of chunks."""
    _, insert = statements(render(load(FLOWS_SQL), profile))
    chunks = await flow_chunks(store)
    insert = (insert.replace(STAGING_FLOWS, target)
              .replace("{threads}", "1" if chunks > 1 else "0"))
    for k in range(chunks):
        await store.release_memory()  # before each chunk: the first starts on what the backfill freed
        cond = tx_range(k, chunks)
        await store.command(insert.replace("{chunk}", f"{where} AND {cond}" if where else cond))
    return chunks


async def compact_sources(store, profile: ProtocolProfile) -> str | None:
    """Merge SOURCE_TABLES of COMPACT_MIN_ROWS rows or more into one part each (Store.compact:
    the embedded store only) once the backfill is over, before the closing checks read them
    with FINAL. Returns a line for the operator, None when there was nothing to do. Never
    raises: it saves memory and time, and the checks are right without it.

    Only when it loses nothing: a merge keeps one row per key, so a key written with two
    contents would keep one and drop the evidence the duplicates gate is there to show. That
    gate's own check runs first (a cheap screen, unless the store holds repeated keys), and a
    conflicting key leaves the tables as they are, for the gate to report."""
    if not store.embedded:
        return None
    t0 = time.monotonic()
    due = [t for t, (parts, rows) in (await store.parts(SOURCE_TABLES)).items()
           if parts > 1 and rows >= COMPACT_MIN_ROWS]
    if not due:
        return None
    check = await evaluate(store, profile, DUPLICATES, GateThresholds(), "strict")
    if not check.passed:
        return f"source tables not compacted: the duplicates check did not pass ({check.detail})"[:300]
    try:
        parts = await store.compact(due)
    except Exception as exc:  # noqa: BLE001 - any store failure: the checks will say more
        return f"source tables not compacted: {exc}"[:300]
    merged = [f"{t} {a}->{b}" for t, (a, b) in parts.items() if a > b]
    if not merged:
        return None
    return f"compacted the source tables in {time.monotonic() - t0:.1f}s (parts: {', '.join(merged)})"


async def materialise_flows(store, profile: ProtocolProfile, *, complete_days_only: bool) -> str:
    """Fill the session temporary table GATE_FLOWS with net_flows_live (COMPLETE days only in
    relaxed mode); return the table's name."""
    await store.command(f"CREATE TEMPORARY TABLE IF NOT EXISTS {GATE_FLOWS} AS {{db}}.net_flows "
                        "ENGINE = MergeTree ORDER BY tuple()")
    await store.command(f"TRUNCATE TABLE {GATE_FLOWS}")
    await fill_flows(store, profile, GATE_FLOWS, where=_COMPLETE_DAYS if complete_days_only else None)
    return GATE_FLOWS


# --- evaluation -----------------------------------------------------------------------------
def _passes(value: float, comparator: str, threshold: float) -> bool:
    if comparator == ">=":
        return value >= threshold - 1e-12
    if comparator == "<=":
        return value <= threshold + 1e-12
    return abs(value - threshold) < 1e-12


def format_result(r: GateResult) -> str:
    """One gates.log / on-complete.log line."""
    verdict = "PASS" if r.passed else "FAIL"
    line = (f"gate {r.name} mode={r.mode} value={r.value:.4f} {r.comparator} "
            f"{r.threshold:.4f} {verdict}")
    if r.detail:
        line += f" ({r.detail})"
    return line if r.passed else f"❌ {line}"


def shortfall(r: GateResult) -> str:
    """How far a failed gate is from its threshold, in words."""
    if r.comparator == ">=":
        return f"{r.value:.4f} < {r.threshold:.4f} by {r.threshold - r.value:.4f}"
    if r.comparator == "<=":
        return f"{r.value:.4f} > {r.threshold:.4f} by {r.value - r.threshold:.4f}"
    return f"{r.value:g} != {r.threshold:g} (off by {abs(r.value - r.threshold):g})"


async def evaluate(store, profile: ProtocolProfile, spec: GateSpec, thresholds: GateThresholds,
                   mode: Mode, *, flows: str = LIVE_FLOWS, streams: Sequence[str] = ()) -> GateResult:
    threshold = float(spec.threshold(thresholds, mode))
    at = dt.datetime.now(dt.timezone.utc)
    sql = render(load(spec.file), profile, flows=flows, complete_days_only=(mode == "relaxed"),
                 streams=streams)
    stmts = statements(sql)
    try:
        if len(stmts) == 2:
            # a cheap screen (clean, n) first; the exact query only when the screen is not clean
            clean, n = (await store.query(stmts[0]))[0]
            if not n:
                return GateResult(spec.name, mode, spec.empty_value, threshold, spec.comparator,
                                  True, at, "no data yet")
            if clean:
                return GateResult(spec.name, mode, spec.empty_value, threshold, spec.comparator,
                                  True, at, f"n={int(n)}; screened clean")
        rows = await store.query(stmts[-1])
    except Exception as exc:  # a gate that cannot run fails
        return GateResult(spec.name, mode, 0.0, threshold, spec.comparator, False, at,
                          f"❌ Error: gate query failed: {exc}"[:500])
    value, n, detail = rows[0] if rows else (spec.empty_value, 0, "")
    if not n:
        return GateResult(spec.name, mode, spec.empty_value, threshold, spec.comparator, True, at,
                          "no data yet")
    value = float(value)
    passed = _passes(value, spec.comparator, threshold)
    detail = f"n={int(n)}" + (f"; {detail}" if detail else "")
    return GateResult(spec.name, mode, value, threshold, spec.comparator, passed, at, detail[:1000])


async def record(store, results: list[GateResult], run_id: str = "") -> None:
    """Append results to ClickHouse `gate_results`."""
    if not results:
        return
    await store.insert_columns("gate_results", {
        "run_id": [run_id] * len(results),
        "name": [r.name for r in results],
        "mode": [r.mode for r in results],
        "value": [float(r.value) for r in results],
        "threshold": [float(r.threshold) for r in results],
        "comparator": [r.comparator for r in results],
        "passed": [bool(r.passed) for r in results],
        "detail": [r.detail for r in results],
        "at": [r.at for r in results],
    })


def log_results(logger: logging.Logger | None, results: list[GateResult]) -> None:
    if logger is None:
        return
    for r in results:
        if r.passed:
            logger.info(format_result(r))
        else:
            log_error(logger, format_result(r).removeprefix("❌ "))


async def run_gates(store, profile: ProtocolProfile, thresholds: GateThresholds, mode: Mode, *,
                    logger: logging.Logger | None = None, run_id: str = "",
                    flows_table: str | None = None, only: tuple[str, ...] | None = None,
                    streams: Sequence[str] = ()) -> list[GateResult]:
    """Evaluate every gate, store and log each result, return them (in GATES order).

    `flows_table`: read the classified flows from this table (`{db}.net_flows_staging` inside
    the rebuild) instead of the live view. `only`: a subset of GATE_NAMES.
    """
    if mode not in ("relaxed", "strict"):
        raise ValueError(f"mode must be relaxed or strict, not {mode!r}")
    specs = [g for g in GATES if only is None or g.name in only]
    lock = _locks.setdefault(store, asyncio.Lock())
    async with lock:
        results = await _run_specs(store, profile, thresholds, mode, specs, flows_table, streams)
    log_results(logger, results)
    try:
        await record(store, results, run_id)
    except Exception as exc:
        if logger is not None:
            log_error(logger, f"cannot record gate results: {exc}")
    return results


async def _run_specs(store, profile: ProtocolProfile, thresholds: GateThresholds, mode: Mode,
                     specs: list[GateSpec], flows_table: str | None,
                     streams: Sequence[str]) -> list[GateResult]:
    flows = flows_table or LIVE_FLOWS
    failed: dict[str, str] = {}  # gate name -> why it cannot run
    try:
        await ensure_views(store, profile)
    except Exception as exc:
        why = f"❌ Error: cannot create the net-flow views: {exc}"[:500]
        failed = {name: why for name in FLOW_GATES + ("infra_balance",)}
    scratch = (not failed and flows_table is None and store.embedded
               and any(s.name in FLOW_GATES for s in specs))
    results: list[GateResult] = []
    try:
        if scratch:
            try:
                flows = await materialise_flows(store, profile, complete_days_only=(mode == "relaxed"))
            except Exception as exc:
                why = f"❌ Error: cannot materialise the net flows: {exc}"[:500]
                failed.update({name: why for name in FLOW_GATES})
        for spec in specs:
            if spec.name in failed:
                results.append(GateResult(spec.name, mode, 0.0, float(spec.threshold(thresholds, mode)),
                                          spec.comparator, False, dt.datetime.now(dt.timezone.utc),
                                          failed[spec.name]))
                continue
            results.append(await evaluate(store, profile, spec, thresholds, mode, flows=flows,
                                          streams=streams))
    finally:
        if scratch:
            try:  # the copy is only for this run: free its disk
                await store.command(f"TRUNCATE TABLE IF EXISTS {GATE_FLOWS}")
            except Exception:
                pass
        await store.release_memory()
    return results
