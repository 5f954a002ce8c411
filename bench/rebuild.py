"""Benchmark the on-complete rebuild (steps 1–4) on synthetic transfer rows in embedded chDB.

    .venv/bin/python bench/rebuild.py                 # 5 M rows (~15 s on 2 cores)
    .venv/bin/python bench/rebuild.py --rows 20000000 # the DESIGN figure: 20 M rows

Rows are generated inside ClickHouse (INSERT ... SELECT FROM numbers()), so the load is fast
and the Python side holds nothing. Each trade is one tx of 4 rows shaped like a CLOB fill
(buyer -> exchange USDC, exchange -> seller USDC, seller -> exchange and exchange -> buyer
TransferSingle); every 10th tx is instead a split (USDC wallet -> CTF, TransferBatch mint of
both outcomes). One market per 2000 txs, ~200 traders per market (so a position has a few
dozen flows, as on Polymarket, rather than one). Markets are registered, half of them resolved; every day COMPLETE with a tiled
ledger, so all gates run for real. Prints each step's seconds and the peak RSS (the process
includes chDB, so that is the whole rebuild's memory). Figures, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.engine.rebuild import rebuild  # noqa: E402
from console.engine.store import Store  # noqa: E402
from console.protocol import DEFAULT_PROFILE as P  # noqa: E402
from console.settings import GateThresholds  # noqa: E402

USDC = P.collateral[0].address
CTF = P.ctf[0].address
EXCHANGE = P.exchanges[0].address
ZERO = "0x" + "0" * 40


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gen_sql(rows: int, days: int) -> list[str]:
    txs = max(1, -(-rows * 10 // 39))  # 9 trades of 4 rows + 1 split of 3 rows per 10 txs
    markets = max(10, txs // 2000)
    wallets = max(100, txs // 20)
    per_day = -(-txs // days)
    blocks_per_day = per_day + 100
    # per tx i: kind (split every 10th), market, outcome, parties, shares, cents
    common = f"""
        number AS i,
        i % 10 = 9 AS is_split,
        i % {markets} AS m,
        intDiv(i, {markets}) % 2 AS k,
        toUInt256(m * 2 + 1 + k) AS tok,
        concat('0x', leftPad(hex((m * 7919 + cityHash64(i, 1) % 200) % {wallets}), 40, '0')) AS buyer,
        concat('0x', leftPad(hex((m * 7919 + cityHash64(i, 2) % 200) % {wallets}), 40, '0')) AS seller,
        toUInt256((1 + cityHash64(i, 3) % 500) * 10000) AS shares,
        toUInt256(5 + cityHash64(i, 4) % 90) AS cents,
        toUInt256(shares * cents / 100) AS cash,
        intDiv(i, {per_day}) AS day,
        toUInt64(day * {blocks_per_day} + i % {per_day}) AS block,
        toDateTime('2024-01-01 00:00:00', 'UTC') + toIntervalSecond(block * 2) AS bt,
        concat('0x', leftPad(hex(i), 64, '0')) AS tx"""
    return [
        f"""INSERT INTO {{db}}.erc20_transfers
            (token, from_address, to_address, value, tx_hash, log_index, block_number, block_time, day_idx)
        SELECT '{USDC}', leg.1, leg.2, leg.3, tx, leg.4, block, bt, day
        FROM (SELECT {common} FROM numbers({txs}))
        ARRAY JOIN if(is_split,
                      [(buyer, '{CTF}', shares, toUInt32(0))],
                      [(buyer, '{EXCHANGE}', cash, toUInt32(0)), ('{EXCHANGE}', seller, cash, toUInt32(1))]) AS leg
        SETTINGS max_insert_threads = 2""",
        f"""INSERT INTO {{db}}.erc1155_transfers
            (contract, operator, from_address, to_address, token_id, value, tx_hash, log_index,
             batch_index, block_number, block_time, day_idx)
        SELECT '{CTF}', leg.1, leg.2, leg.3, leg.4, shares, tx, leg.5, leg.6, block, bt, day
        FROM (SELECT {common} FROM numbers({txs}))
        ARRAY JOIN if(is_split,
                      [(buyer, '{ZERO}', buyer, toUInt256(m * 2 + 1), toUInt32(1), toUInt32(0)),
                       (buyer, '{ZERO}', buyer, toUInt256(m * 2 + 2), toUInt32(1), toUInt32(1))],
                      [('{EXCHANGE}', seller, '{EXCHANGE}', tok, toUInt32(2), toUInt32(0)),
                       ('{EXCHANGE}', '{EXCHANGE}', buyer, tok, toUInt32(3), toUInt32(0))]) AS leg
        SETTINGS max_insert_threads = 2""",
        f"""INSERT INTO {{db}}.token_registrations
            (contract, token0, token1, condition_id, tx_hash, log_index, block_number, block_time, day_idx)
        SELECT '{EXCHANGE}', toUInt256(number * 2 + 1), toUInt256(number * 2 + 2),
               concat('0x', leftPad(hex(number + 1), 64, '0')), concat('0xee', leftPad(hex(number), 62, '0')),
               0, 0, toDateTime('2024-01-01 00:00:00', 'UTC'), 0
        FROM numbers({markets})""",
        f"""INSERT INTO {{db}}.condition_resolutions
            (contract, condition_id, oracle, question_id, outcome_slot_count, payout_numerators,
             tx_hash, log_index, block_number, block_time, day_idx)
        SELECT '{CTF}', concat('0x', leftPad(hex(number + 1), 64, '0')), '{ZERO}', '0x', 2,
               if(number % 4 = 0, [toUInt256(1), toUInt256(0)], [toUInt256(0), toUInt256(1)]),
               concat('0xff', leftPad(hex(number), 62, '0')), 0,
               toUInt64({days - 1} * {blocks_per_day} + {per_day} + 50),
               toDateTime('2024-01-01 00:00:00', 'UTC'), {days - 1}
        FROM numbers({markets}) WHERE number % 2 = 0""",
        f"""INSERT INTO {{db}}.backfill_checkpoint_versions
        SELECT number, toDate('2024-01-01') + number, number * {blocks_per_day},
               number * {blocks_per_day} + {blocks_per_day} - 1, 'COMPLETE', number % 8, 1, 1,
               0, 0, 1, '', now64(6)
        FROM numbers({days})""",
        f"""INSERT INTO {{db}}.day_blocks_versions
        SELECT number, toDate('2024-01-01') + number, number * {blocks_per_day},
               number * {blocks_per_day} + {blocks_per_day} - 1, now64(6)
        FROM numbers({days})""",
        f"""INSERT INTO {{db}}.coverage_ledger_versions
        SELECT intDiv(number, 5) AS d,
               ['usdc_from', 'usdc_to', 'ctf_transfers', 'ctf_resolutions', 'token_registrations'][number % 5 + 1],
               d * {blocks_per_day}, d * {blocks_per_day} + {blocks_per_day} - 1, 0, 1, now64(6)
        FROM numbers({days * 5})""",
    ]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000, help="transfer rows (erc20 + erc1155)")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--optimize", action="store_true",
                    help="merge all parts first (a long-finished backfill); default: as inserted")
    ap.add_argument("--dir", type=Path, default=None, help="chDB + data dir (default: a temp dir, removed)")
    args = ap.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    try:
        store = await Store.open(f"chdb://{root / 'ch'}", "bench")
        t0 = time.perf_counter()
        for sql in gen_sql(args.rows, args.days):
            await store.command(sql)
        n20 = (await store.query("SELECT count() FROM {db}.erc20_transfers"))[0][0]
        n1155 = (await store.query("SELECT count() FROM {db}.erc1155_transfers"))[0][0]
        print(f"generated {n20 + n1155:,} transfer rows ({n20:,} erc20 + {n1155:,} erc1155) "
              f"over {args.days} days in {time.perf_counter() - t0:.1f}s; peak RSS {rss_mb():.0f} MB")
        if args.optimize:
            t2 = time.perf_counter()
            await store.command("OPTIMIZE TABLE {db}.erc20_transfers FINAL")
            await store.command("OPTIMIZE TABLE {db}.erc1155_transfers FINAL")
            print(f"merged all parts (OPTIMIZE FINAL) in {time.perf_counter() - t2:.1f}s")

        print(f"cpus: {os.cpu_count()}")
        cpu_at: dict[int, float] = {}

        def on_step(step):
            if step.state == "running":
                cpu_at[step.index] = cpu_s()
                return
            secs = f"{step.seconds:.2f}s" if step.seconds is not None else "-"
            cpu = f"{cpu_s() - cpu_at[step.index]:.2f}s" if step.index in cpu_at else "-"
            print(f"  step {step.index} {step.name:<16} {step.state:<8} wall {secs:>8}  cpu {cpu:>8}  "
                  f"peak RSS {rss_mb():.0f} MB   {step.detail[:80]}", flush=True)

        data_dir = root / "data"
        thresholds = GateThresholds(win_rate_min=0.0, win_rate_max=1.0)
        t1, c1 = time.perf_counter(), cpu_s()
        out = await rebuild(store, P, thresholds, data_dir, run_stats={"bench_rows": args.rows},
                            on_step=on_step, run_id="bench")
        total = time.perf_counter() - t1
        print(f"rebuild {'OK' if out.ok else 'STOPPED: ' + out.reason[:300]} — steps 1-4 "
              f"{total:.2f}s wall, {cpu_s() - c1:.2f}s cpu, for {n20 + n1155:,} rows; "
              f"peak RSS {rss_mb():.0f} MB; load average {os.getloadavg()[0]:.2f}")
        if out.ok:
            p = out.summary.get("pnl", {})
            print(f"  {p.get('wallets')} wallets, {p.get('positions')} positions, "
                  f"win rate {p.get('win_rate', 0):.4f}")
        await store.close()
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
