"""Command line: sub-commands, options and exit codes (DESIGN §5.1).

Heavy imports (web3, chdb, textual) happen inside the command that needs them, so `--help`
and `status` answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_GATE, EXIT_CONFIG, EXIT_ABORTED, EXIT_RUNTIME = 0, 1, 2, 3, 4

DESCRIPTION = """\
Backfill Polygon transfer logs (Polymarket USDC.e + Conditional Tokens) into ClickHouse with
parallel shards, watch and heal them, validate with safety gates, and rebuild per-wallet PnL.

With no options it runs the demo: a simulated chain (devchain) into embedded ClickHouse under
./data. Every option is also an env var BACKFILL_<NAME> and a key in backfill.toml.
"""

EPILOG = """\
exit codes: 0 success, 1 stopped by a failed gate, 2 bad configuration or input (nothing
written), 3 aborted by the operator, 4 unrecoverable runtime failure (RPC unreachable, store
down, all shards stalled, days that cannot be fetched completely).

example (real provider, headless, 1048 days from 2023-01-01):
  BACKFILL_RPC_URL=https://polygon-mainnet.g.alchemy.com/v2/KEY \\
  backfill-console run --no-ui --start-date 2023-01-01 --days 1048 --rps 25
"""


def _settings_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run options (env BACKFILL_<NAME>, backfill.toml key <name>)")
    a = g.add_argument
    a("--config", type=Path, help="TOML file with settings and the [protocol] profile (default ./backfill.toml)")
    a("--rpc-url", help="JSON-RPC URL (secret; never logged) or 'devchain' (default: devchain, simulated)")
    a("--start-date", help="first UTC day, YYYY-MM-DD (required with a real RPC)")
    a("--days", type=int, help="how many days (default: 14 on the devchain)")
    a("--end-date", help="last UTC day, inclusive, instead of --days")
    a("--shards", type=int, help="parallel shard workers; shard k owns days with day_idx %% N == k (8)")
    a("--shard-ids", help="comma-separated shards this process runs, for several hosts sharing one store")
    a("--clickhouse", help="ClickHouse DSN: chdb:///path (embedded, default <data-dir>/clickhouse) or http(s)://user:pass@host:8123/ (secret)")
    a("--database", help="ClickHouse database (backfill)")
    a("--data-dir", help="where state, logs, reports and embedded ClickHouse live (data)")
    a("--rps", type=float, help="request-rate ceiling for the provider (default: none; backs off on 429 by itself)")
    a("--max-concurrency", type=int, help="in-flight RPC requests at most (16)")
    a("--stall-seconds", type=float, help="a shard without heartbeat progress this long is restarted (300)")
    a("--monitor-interval", type=float, help="seconds between monitor checks (30)")
    a("--gate-interval", type=float, help="seconds between relaxed gate runs during the backfill (1800)")
    a("--usdc-scope", choices=("polymarket", "all"), help="USDC transfers touching Polymarket contracts, or all (polymarket)")
    a("--no-rebuild", action="store_true", default=None, help="stop after the backfill and its gates")
    a("--reset", action="store_true", default=None, help="start the run afresh in this data dir (drops its state and tables)")
    a("--refresh-hz", type=float, help="console refresh rate (4)")
    a("--report-every", help="headless: write a screenshot report every DURATION (e.g. 10m)")
    a("--devchain-profile", help="devchain fault profile: clean, demo, alchemy, infura, hostile, ... (demo)")
    a("--devchain-density", help="devchain world: demo, small, full (demo)")
    a("--devchain-seed", type=int, help="devchain world seed (1)")


_SETTING_KEYS = (
    "rpc_url", "start_date", "days", "end_date", "shards", "shard_ids", "clickhouse", "database",
    "data_dir", "rps", "max_concurrency", "stall_seconds", "monitor_interval", "gate_interval",
    "usdc_scope", "no_rebuild", "reset", "refresh_hz", "report_every", "devchain_profile",
    "devchain_density", "devchain_seed", "read_only",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="backfill-console", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    run = add("run", "interactive console (default) or headless with --no-ui")
    run.add_argument("--no-ui", action="store_true", help="headless: a status line every few seconds")
    _settings_options(run)

    attach = add("attach", "console on a run that another (headless) process drives")
    attach.add_argument("--read-only", action="store_true", default=None, help="view only, no control keys")
    _settings_options(attach)

    dev = add("devchain", "serve the simulated Polygon chain on loopback (and write its ground truth)")
    from console.devchain.cli import add_arguments as devchain_arguments
    devchain_arguments(dev)

    status = add("status", "state of the run from the data dir; starts nothing")
    status.add_argument("--json", action="store_true", help="machine-readable")
    _settings_options(status)

    shot = add("screenshot", "render the dashboard from the data dir's state to SVG or PNG")
    shot.add_argument("--out", type=Path, help="FILE.svg or FILE.png (default data/reports/<UTC>.svg)")
    shot.add_argument("--size", default="160x48", help="COLUMNSxROWS (160x48)")
    _settings_options(shot)

    gates = add("gates", "run the safety gates once and print them")
    gates.add_argument("--strict", action="store_true", help="strict thresholds (as before the rebuild)")
    _settings_options(gates)

    rebuild = add("rebuild", "run the 4-step rebuild now (requires every day COMPLETE)")
    _settings_options(rebuild)

    # `backfill-console --no-ui ...` without a sub-command means `run`.
    parser.add_argument("--no-ui", action="store_true", help=argparse.SUPPRESS)
    return parser


def settings_from_args(args: argparse.Namespace):
    from console.settings import load_settings

    cli: dict[str, Any] = {k: getattr(args, k, None) for k in _SETTING_KEYS}
    return load_settings(cli, config_file=getattr(args, "config", None))


def fail(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"backfill-console: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    known = {"run", "attach", "devchain", "status", "screenshot", "gates", "rebuild"}
    if not argv or (argv[0] not in known and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad input, 0 on --help
        return int(exc.code or 0)

    from console.settings import ConfigError

    # Everything this tool writes (state, logs, reports, embedded ClickHouse) is the operator's
    # alone: files 0600, directories 0700, including the ones chDB creates.
    os.umask(0o077)
    try:
        if args.command == "devchain":
            from console.devchain.cli import run as run_devchain
            return run_devchain(args)
        settings = settings_from_args(args)
        from console import commands
        handler = getattr(commands, f"cmd_{args.command}")
        return handler(settings, args)
    except ConfigError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return EXIT_ABORTED


if __name__ == "__main__":
    sys.exit(main())
