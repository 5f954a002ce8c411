"""The on-complete rebuild (DESIGN §6.9): net flows -> hard gates -> PnL -> coverage report.

1. net flows — `console/sql/rebuild/00_views.sql` classifies every (tx, wallet, token) from the
   transfer tables; `01_net_flows.sql` materialises it into `net_flows_staging`.
2. hard gates — every gate in strict mode (console/engine/gates.py) on the staging flows.
   Any failure: STOP, nothing is swapped, exit code 1, on-complete.log names the gate and the
   shortfall.
3. PnL — `03_positions.sql` folds each (wallet, token)'s flows with arrayFold into
   `positions_staging` and `wallet_pnl_staging`; the per-position win rate must sit in
   [win_rate_min, win_rate_max] (else STOP, exit 1); then `05_swap.sql` EXCHANGEs the three
   staging tables with production (RENAME fallback, `05_swap_rename.sql`, where EXCHANGE is
   unsupported).
4. coverage report — `data_dir/post_rebuild_snapshot_<UTC>.json`.

Each step reports a `RebuildStep` (running, then done/failed/skipped) through `on_step`, a row
in ClickHouse `rebuild_steps` and lines in on-complete.log. On success the last line of
on-complete.log is exactly "✅ REBUILD COMPLETE - READY FOR PRODUCTION" (no timestamp prefix,
so `tail -1` compares equal).

Exit codes (DESIGN §5.1): 0 success, 1 stopped by a gate or the win-rate band, 4 a step
failed at runtime (a ClickHouse error) — in every non-zero case production is untouched
unless the failure happened inside the swap itself.

PnL rounding rule (console/sql/rebuild/03_positions.sql; quantities in integer micro-shares,
cash in integer micro-USDC, prices and the average cost in fixed point with 18 decimals):
  price_e18 = floor(|usdc| * 1e18 / shares)           (split/merge 0.5, redemption the payout)
  buy  q at p: avg = floor((avg * amount + p * q) / (amount + q));  amount += q
  sell q at p: s = min(q, amount); realized_e18 += s * (p - avg);   amount -= s
  settle (condition resolved while held): sell the whole amount at the payout
  realized_pnl = realized_e18 / 1e18 rounded half to even, once, at the end.
This equals the devchain's exact Fraction bookkeeping rounded with Python's round() (see
console/devchain/markets.py) unless the exact value sits within ~1e-6 micro-USDC of a half.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from console.engine import gates as gates_mod
from console.engine.events import GateResult, RebuildStep
from console.engine.logs import error as log_error
from console.engine.logs import file_logger
from console.protocol import ProtocolProfile
from console.settings import GateThresholds
from console.sql import load, statements

SUCCESS_LINE = "✅ REBUILD COMPLETE - READY FOR PRODUCTION"
STEP_NAMES = {1: "net flows", 2: "hard gates", 3: "pnl", 4: "coverage report"}
DERIVED_TABLES = ("net_flows", "positions", "wallet_pnl")
# Step 1 aggregates at most about gates.FLOW_CHUNK_ROWS transfer rows at once (see
# 01_net_flows.sql and gates.tx_range): 20 M rows in one go peaked at 8.7 GB RSS, in 3 chunks
# at ~4 GB, and ran faster (bench/rebuild.py).
# Step 3a gathers every flow of a position into one array before folding it: in one go at
# 1048 days (11.2 M flows) that GROUP BY took the engine from ~0.7 to ~1.8 GB RSS
# (bench/scale.py), so it runs per wallet-hash chunk of about this many flows: 2 M (6 chunks)
# peaked at +390 MB over the base in 63 s, 1 M (12 chunks) at +340 MB in 79 s (fresh process);
# after the source tables' compaction, 1 M chunks at +261-308 MB in ~6.2 s each, 500 K at
# +201-261 MB in ~4.2 s each (every chunk scans all the flows: ~2 s of it is fixed).
POSITION_CHUNK_FLOWS = 500_000


@dataclass
class RebuildOutcome:
    ok: bool
    exit_code: int  # 0 ok, 1 stopped by a gate / the win-rate band, 4 runtime failure
    reason: str
    report_path: Path | None
    steps: list[RebuildStep] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


class _Stop(Exception):
    """A gate (or the win-rate band) said no: stop without swapping, exit 1."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _write_last_line(logger: logging.Logger, line: str) -> None:
    """Write `line` as a bare line (no timestamp) to the logger's files, log it elsewhere."""
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None)
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler):
            h.acquire()
            try:
                if h.stream is None:
                    h.stream = h._open()
                h.stream.write(line + "\n")
                h.flush()
            finally:
                h.release()
        else:
            h.handle(record)


async def swap_tables(store, logger: logging.Logger | None = None) -> str:
    """EXCHANGE staging <-> production for the derived tables; RENAME where unsupported."""
    try:
        for stmt in statements(load("rebuild/05_swap.sql")):
            await store.command(stmt)
        return "exchange"
    except Exception as exc:
        text = str(exc)
        if "EXCHANGE" not in text.upper() and "NOT_IMPLEMENTED" not in text.upper() \
                and "SUPPORT" not in text.upper():
            raise
        if logger is not None:
            logger.info("EXCHANGE TABLES unsupported here (%s); swapping with RENAME", text[:200])
    for stmt in statements(load("rebuild/05_swap_rename.sql")):
        await store.command(stmt)
    return "rename"


async def flow_counts(store, table: str = "net_flows_staging") -> dict[str, dict[str, int]]:
    sql = load("rebuild/02_flow_counts.sql").replace("net_flows_staging", table)
    out: dict[str, dict[str, int]] = {}
    for kind, conf, n in await store.query(statements(sql)[0]):
        out.setdefault(kind, {})[conf] = int(n)
    return out


async def pnl_summary(store) -> dict[str, Any]:
    rows = await store.query_dicts(statements(load("rebuild/04_pnl_summary.sql"))[0])
    s = rows[0] if rows else {}
    out = {k: (int(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in s.items()}
    total = int(out.pop("total_realized_e6", "0") or 0)
    out["total_realized_e6"] = total
    out["total_realized_usdc"] = total / 1e6
    out["win_rate"] = float(out.get("win_rate", 0.0) or 0.0)
    return out


def _json_default(obj):
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return asdict(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


async def build_report(store, data_dir: Path, *, run_stats: dict, gates: list[GateResult],
                       pnl: dict, flows: dict, steps: list[RebuildStep], run_id: str,
                       profile: ProtocolProfile, started: dt.datetime) -> Path:
    days = await store.query_dicts(statements(load("rebuild/06_report_days.sql"))[0])
    streams = await store.query_dicts(statements(load("rebuild/07_report_streams.sql"))[0])
    tables = await store.query_dicts(statements(load("rebuild/08_report_tables.sql"))[0])
    by_status: dict[str, int] = {}
    for d in days:
        by_status[d["status"]] = by_status.get(d["status"], 0) + 1
    now = _now()
    report = {
        "generated_at": now,
        "run_id": run_id,
        "database": store.database,
        "store": store.label,
        "profile": profile.name,
        "days": {
            "total": len(days),
            "by_status": by_status,
            "first_day": days[0]["day"] if days else None,
            "last_day": days[-1]["day"] if days else None,
            "first_block": min((d["start_block"] for d in days), default=None),
            "last_block": max((d["end_block"] for d in days), default=None),
            "erc20_rows": sum(int(d["erc20_count"]) for d in days),
            "erc1155_rows": sum(int(d["erc1155_count"]) for d in days),
            "list": days,
        },
        "streams": {s.pop("stream"): s for s in streams},
        "tables": {t["t"]: {"rows": int(t["rows"]), "raw_rows": int(t["raw_rows"])} for t in tables},
        "net_flows": {"rows": sum(sum(v.values()) for v in flows.values()), "by_kind": flows},
        "rpc": dict(run_stats),
        "gates": [asdict(g) for g in gates],
        "pnl": pnl,
        "rebuild": {
            "started_at": started,
            "seconds": round((now - started).total_seconds(), 3),
            "steps": [asdict(s) for s in steps],
        },
        "run_duration_seconds": run_stats.get("run_duration_seconds", run_stats.get("duration_seconds")),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"post_rebuild_snapshot_{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    n = 1
    while path.exists():  # two rebuilds within one second: never overwrite a report
        path = data_dir / f"post_rebuild_snapshot_{now.strftime('%Y%m%dT%H%M%SZ')}_{n}.json"
        n += 1
    path.write_text(json.dumps(report, indent=2, default=_json_default, ensure_ascii=False),
                    encoding="utf-8")
    return path


async def rebuild(store, profile: ProtocolProfile, thresholds: GateThresholds, data_dir: Path, *,
                  run_stats: dict, on_step: Callable[[RebuildStep], None] | None = None,
                  logger: logging.Logger | None = None, run_id: str = "",
                  streams: Sequence[str] = ()) -> RebuildOutcome:
    """Run steps 1–4. Never raises for a data or ClickHouse problem: see RebuildOutcome.

    `streams`: the stream names every day must have in its coverage ledger (see gates.render).
    """
    data_dir = Path(data_dir)
    log = logger or file_logger(data_dir, "on-complete")
    started = _now()
    steps: list[RebuildStep] = []
    summary: dict[str, Any] = {}
    gate_results: list[GateResult] = []
    log.info("rebuild %s started (4 steps: %s)", run_id or "-", ", ".join(STEP_NAMES.values()))

    def emit(step: RebuildStep) -> None:
        if on_step is not None:
            try:
                on_step(step)
            except Exception:  # a UI callback must not break the rebuild
                pass

    async def persist(step: RebuildStep, finished: dt.datetime | None) -> None:
        try:
            await store.insert_columns("rebuild_steps", {
                "run_id": [run_id], "step": [step.index], "name": [step.name],
                "state": [step.state], "started_at": [step.started_at or finished or _now()],
                "finished_at": [finished], "seconds": [float(step.seconds or 0.0)],
                "detail": [step.detail[:2000]],
            })
        except Exception as exc:
            log_error(log, f"cannot record rebuild step {step.index}: {exc}")

    async def run_step(index: int, body) -> RebuildStep:
        name = STEP_NAMES[index]
        t0 = _now()
        clock = time.perf_counter()
        emit(RebuildStep(index, name, "running", t0))
        log.info("step %d/4 %s: running", index, name)
        try:
            detail = await body()
        except _Stop as stop:
            step = RebuildStep(index, name, "failed", t0, time.perf_counter() - clock, str(stop))
            steps.append(step)
            emit(step)
            log_error(log, f"step {index}/4 {name}: STOP — {stop} ({step.seconds:.2f}s)")
            await persist(step, _now())
            raise
        except Exception as exc:
            step = RebuildStep(index, name, "failed", t0, time.perf_counter() - clock,
                               f"Error: {exc}"[:2000])
            steps.append(step)
            emit(step)
            log_error(log, f"step {index}/4 {name} failed: {exc} ({step.seconds:.2f}s)")
            await persist(step, _now())
            raise
        await store.release_memory()  # freed pages back to the OS before the next step
        step = RebuildStep(index, name, "done", t0, time.perf_counter() - clock, detail or "")
        steps.append(step)
        emit(step)
        log.info("step %d/4 %s: done in %.2fs — %s", index, name, step.seconds, detail)
        await persist(step, _now())
        return step

    async def skip_rest(after: int, why: str) -> None:
        for i in range(after + 1, 5):
            step = RebuildStep(i, STEP_NAMES[i], "skipped", None, None, why)
            steps.append(step)
            emit(step)
            await persist(step, None)

    # --- step bodies ------------------------------------------------------------------------
    async def step_net_flows() -> str:
        compacted = await gates_mod.compact_sources(store, profile)
        if compacted:
            log.info("%s", compacted)
            summary["compacted"] = compacted
        await gates_mod.ensure_views(store, profile)
        truncate, _ = statements(gates_mod.render(load(gates_mod.FLOWS_SQL), profile))
        await store.command(truncate)
        chunks = await gates_mod.fill_flows(store, profile, gates_mod.STAGING_FLOWS)
        summary["net_flow_chunks"] = chunks
        counts = await flow_counts(store)
        summary["net_flows"] = counts
        total = sum(sum(v.values()) for v in counts.values())
        parts = [f"{k} {sum(v.values())} (" + ", ".join(f"{c} {n}" for c, n in sorted(v.items())) + ")"
                 for k, v in sorted(counts.items())]
        return f"{total} rows in {chunks} chunk(s): " + "; ".join(parts)

    async def step_gates() -> str:
        results = await gates_mod.run_gates(
            store, profile, thresholds, "strict", logger=log, run_id=run_id,
            flows_table=gates_mod.STAGING_FLOWS, streams=streams)
        gate_results.extend(results)
        summary["gates"] = [asdict(r) for r in results]
        failed = [r for r in results if not r.passed]
        if failed:
            raise _Stop("; ".join(f"gate {r.name} failed: {gates_mod.shortfall(r)}"
                                  + (f" [{r.detail}]" if r.detail else "") for r in failed))
        return f"{len(results)} gates passed (strict)"

    async def step_pnl() -> str:
        flow_rows = (await store.query("SELECT count() FROM {db}.net_flows_staging"))[0][0]
        chunks = max(1, -(-int(flow_rows) // POSITION_CHUNK_FLOWS))
        for stmt in statements(gates_mod.render(load("rebuild/03_positions.sql"), profile)):
            for k in range(chunks if "{chunk}" in stmt else 1):
                await store.command(stmt.replace("{chunk}", gates_mod.chunk_filter(k, chunks, "wallet")))
                await store.release_memory()
        summary["position_chunks"] = chunks
        pnl = await pnl_summary(store)
        summary["pnl"] = pnl
        decided = pnl.get("decided_positions", 0)
        rate = pnl["win_rate"]
        lo, hi = thresholds.win_rate_min, thresholds.win_rate_max
        at = _now()
        if decided:
            passed = lo - 1e-12 <= rate <= hi + 1e-12
            off = 0.0 if passed else (lo - rate if rate < lo else rate - hi)
            detail = (f"n={decided}; band {lo:.2f}..{hi:.2f}; {pnl.get('wins', 0)} wins of "
                      f"{decided} decided positions" + ("" if passed else f"; outside by {off:.4f}"))
            wr = GateResult("win_rate", "strict", rate, lo, "in", passed, at, detail)
        else:
            wr = GateResult("win_rate", "strict", 1.0, lo, "in", True, at, "no data yet")
        gate_results.append(wr)
        gates_mod.log_results(log, [wr])
        try:
            await gates_mod.record(store, [wr], run_id)
        except Exception as exc:
            log_error(log, f"cannot record the win-rate gate: {exc}")
        if not wr.passed:
            raise _Stop(f"gate win_rate failed: {rate:.4f} outside [{lo:.2f}, {hi:.2f}] "
                        f"by {off:.4f} ({wr.detail})")
        how = await swap_tables(store, log)
        summary["swap"] = how
        return (f"{pnl.get('wallets', 0)} wallets, {pnl.get('positions', 0)} positions, "
                f"win rate {rate:.4f}, realized {pnl['total_realized_usdc']:.6f} USDC; "
                f"swapped {', '.join(DERIVED_TABLES)} ({how})")

    report_path: list[Path] = []

    async def step_report() -> str:
        path = await build_report(
            store, data_dir, run_stats=run_stats, gates=gate_results, pnl=summary.get("pnl", {}),
            flows=summary.get("net_flows", {}), steps=list(steps), run_id=run_id,
            profile=profile, started=started)
        report_path.append(path)
        summary["report"] = str(path)
        return str(path)

    bodies = {1: step_net_flows, 2: step_gates, 3: step_pnl, 4: step_report}
    for i in range(1, 5):
        try:
            await run_step(i, bodies[i])
        except _Stop as stop:
            await skip_rest(i, "stopped: " + str(stop)[:300])
            reason = str(stop)
            log_error(log, f"REBUILD STOPPED — nothing swapped into production: {reason}")
            return RebuildOutcome(False, 1, reason, None, steps, summary)
        except Exception as exc:
            await skip_rest(i, f"step {i} failed")
            reason = f"step {i} ({STEP_NAMES[i]}) failed: {exc}"
            log_error(log, f"REBUILD FAILED — {reason}")
            return RebuildOutcome(False, 4, reason, None, steps, summary)
    seconds = (_now() - started).total_seconds()
    summary["seconds"] = seconds
    log.info("rebuild finished in %.2fs; report %s", seconds, report_path[0])
    _write_last_line(log, SUCCESS_LINE)
    return RebuildOutcome(True, 0, "ok", report_path[0], steps, summary)
