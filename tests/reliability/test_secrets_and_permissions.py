"""Issue 7.7 and 7.8: no secret anywhere, nothing readable by others.

One full headless run (with the rebuild and periodic screenshot reports) against an RPC URL
that carries an API key in its path AND one in its query (a proxy on 127.0.0.1 that accepts
any path; it records what it was asked, which proves the run used the real URL), then
`screenshot` (SVG and PNG), `status`, `status --json` and `gates` on the same data dir with
the same URL. Afterwards neither secret may appear in any byte of any file under the data
dir or the working directory, in any stdout/stderr, or in any String of any table of the
run's ClickHouse database. The embedded ClickHouse has no password, so a DSN password is
checked where a DSN is used and fails: a closed port and a server that refuses the login.

A provider that quotes the key back in an error (a revoked key mid-run) must not make the
tool repeat it either.

Permissions: the data dir is 0700 (even when it existed as 0755) and every file the tool
creates under it is 0600 (directories 0700).
"""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from tests.e2e.proxy import FaultProxy, LoopbackServer
from tests.reliability.checks import (
    closed_port,
    DAYS, START, SUCCESS_LINE, cli_child, last_line, reader, stop_child, url_settings,
)

PATH_KEY = "SECRETKEY123"
QUERY_KEY = "SECRETQ456"
PASSWORD = "DsnPa55w0rdS3cret"
SECRETS = (PATH_KEY, QUERY_KEY, PASSWORD)


def _leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [s for s in SECRETS if s.encode() in data]


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory, clean_chain):
    root = tmp_path_factory.mktemp("secrets")
    data_dir = root / "data"
    data_dir.mkdir(mode=0o755)  # an existing, too open data dir must be closed down
    data_dir.chmod(0o755)
    outputs: dict[str, str] = {}
    with FaultProxy(clean_chain.url) as proxy:
        url = f"{proxy.url.rstrip('/')}/v2/{PATH_KEY}?apikey={QUERY_KEY}"
        argv = ["run", "--no-ui", "--rpc-url", url, "--start-date", START, "--days", str(DAYS),
                "--shards", "3", "--monitor-interval", "1", "--report-every", "1s", "--data-dir", str(data_dir)]
        proc = cli_child(argv, cwd=root)
        try:
            out, err = proc.communicate(timeout=300)
        finally:
            stop_child(proc)
        outputs["run"] = out + err
        assert proc.returncode == 0, out + err
        common = ["--rpc-url", url, "--data-dir", str(data_dir), "--start-date", START, "--days", str(DAYS)]
        for name, extra in (("screenshot-svg", ["screenshot"]),
                            ("screenshot-png", ["screenshot", "--out", str(data_dir / "reports" / "shot.png")]),
                            ("status", ["status"]), ("status-json", ["status", "--json"]),
                            ("gates", ["gates"])):
            proc = cli_child([*extra, *common], cwd=root)
            try:
                out, err = proc.communicate(timeout=180)
            finally:
                stop_child(proc)
            outputs[name] = out + err
            assert proc.returncode == 0, (name, out + err)
        seen = set(proxy.paths)
    return {"root": root, "data_dir": data_dir, "outputs": outputs, "seen": seen, "url": url}


@pytest.mark.slow
def test_the_run_really_used_the_secret_url(secret_run):
    assert any(PATH_KEY in p and QUERY_KEY in p for p in secret_run["seen"]), secret_run["seen"]
    assert last_line(secret_run["data_dir"] / "backfill" / "on-complete.log") == SUCCESS_LINE
    reports = list((secret_run["data_dir"] / "reports").glob("*"))
    assert any(p.suffix == ".svg" for p in reports) and any(p.suffix == ".png" for p in reports), reports
    assert list(secret_run["data_dir"].glob("post_rebuild_snapshot_*.json"))


@pytest.mark.slow
def test_no_secret_in_any_file(secret_run):
    leaked = {}
    for path in secret_run["root"].rglob("*"):
        if path.is_file() and not path.is_symlink():
            found = _leaks(path.read_bytes())
            if found:
                leaked[str(path.relative_to(secret_run["root"]))] = found
    assert not leaked, f"secrets written to files: {leaked}"


@pytest.mark.slow
def test_no_secret_on_the_terminal(secret_run):
    leaked = {name: _leaks(text) for name, text in secret_run["outputs"].items() if _leaks(text)}
    assert not leaked, leaked


@pytest.mark.slow
def test_no_secret_in_any_clickhouse_table(secret_run):
    settings = url_settings(secret_run["data_dir"], "http://127.0.0.1:1/")
    with reader(settings) as db:
        tables = [t for (t,) in db.query("SELECT name FROM system.tables WHERE database = currentDatabase()")]
        assert "erc20_transfers" in tables and "backfill_checkpoint_versions" in tables, tables
        columns = db.query("SELECT table, name FROM system.columns WHERE database = currentDatabase() "
                           "AND type LIKE '%String%'")
        assert columns, "no String column found: the check would prove nothing"
        leaked = []
        for table in tables:
            rows = db.query(f"SELECT * FROM `{table}`")
            if _leaks(repr(rows)):
                leaked.append(table)
    assert not leaked, f"secrets stored in ClickHouse tables: {leaked}"


# --- a DSN password on the paths where the store is used and fails ---------------------------------
class RefusingClickHouse(LoopbackServer):
    """127.0.0.1 HTTP server answering every request like a ClickHouse that rejects the login."""

    name = "refusing-clickhouse"

    async def make_app(self) -> web.Application:
        async def refuse(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(status=516, text=(
                "Code: 516. DB::Exception: default: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)"))

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", refuse)
        return app




@pytest.mark.parametrize("where", ["closed port", "login refused"])
def test_dsn_password_never_shown_when_the_store_fails(tmp_path, clean_chain, where):
    with contextlib.nullcontext() if where == "closed port" else RefusingClickHouse() as server:
        port = closed_port() if server is None else server.port
        dsn = f"http://default:{PASSWORD}@127.0.0.1:{port}/"
        argv = ["run", "--no-ui", "--rpc-url", clean_chain.url, "--start-date", START, "--days", str(DAYS),
                "--clickhouse", dsn, "--data-dir", str(tmp_path / "data")]
        proc = cli_child(argv, cwd=tmp_path)
        try:
            out, err = proc.communicate(timeout=180)
        finally:
            stop_child(proc)
        status = cli_child(["status", "--json", "--clickhouse", dsn, "--data-dir", str(tmp_path / "data")],
                           cwd=tmp_path)
        try:
            s_out, s_err = status.communicate(timeout=120)
        finally:
            stop_child(status)
    assert proc.returncode != 0, "a run without a store cannot succeed"
    assert not _leaks(out + err + s_out + s_err), out + err + s_out + s_err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not _leaks(path.read_bytes()), path


# --- permissions ---------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _open_to_others(paths) -> list[str]:
    """Files not 0600 / directories not 0700 (symlinks are not checked: their mode means nothing)."""
    bad = []
    for p in paths:
        if p.is_symlink():
            continue
        want = 0o700 if p.is_dir() else 0o600
        if _mode(p) != want:
            bad.append(f"{oct(_mode(p))} {p}")
    return bad


def _own_files(data_dir: Path, *, exclude: tuple[str, ...]) -> list[Path]:
    return [p for p in data_dir.rglob("*")
            if not any(part in exclude for part in p.relative_to(data_dir).parts)]


@pytest.mark.slow
def test_data_dir_is_0700_even_when_it_existed_open(secret_run):
    assert _mode(secret_run["data_dir"]) == 0o700


@pytest.mark.slow
def test_engine_state_and_logs_are_0600(secret_run):
    data_dir = secret_run["data_dir"]
    paths = [p for p in _own_files(data_dir, exclude=("clickhouse", "reports"))
             if not p.name.startswith("post_rebuild_snapshot_")]
    names = {p.name for p in paths}
    assert {".lock", "state.sqlite", "backfill", "monitor.log", "on-complete.log", "gates.log"} <= names, names
    assert _open_to_others(paths) == []


@pytest.mark.slow
def test_coverage_report_is_0600(secret_run):
    """rebuild.build_report writes it with Path.write_text: 0600 only under the CLI's umask."""
    reports = list(secret_run["data_dir"].glob("post_rebuild_snapshot_*.json"))
    assert reports
    assert _open_to_others(reports) == []


@pytest.mark.slow
def test_screenshot_reports_are_0600_in_a_0700_dir(secret_run):
    """Periodic (--report-every) and `screenshot` reports, SVG and PNG, and their directory."""
    reports_dir = secret_run["data_dir"] / "reports"
    assert _open_to_others([reports_dir, *reports_dir.iterdir()]) == []


@pytest.mark.slow
def test_embedded_clickhouse_files_are_0600_too(secret_run):
    """chDB creates its parts and metadata with the process umask: the CLI sets 0077."""
    ch = secret_run["data_dir"] / "clickhouse"
    assert _mode(ch) == 0o700
    bad = _open_to_others(ch.rglob("*"))
    assert bad == [], f"{len(bad)} chDB paths open to others, e.g. {bad[:3]}"


# --- the provider fails at start: the message is clear and the key stays hidden -----------------
def test_rpc_down_at_start_says_so_without_the_key(tmp_path):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/v2/{PATH_KEY}?apikey={QUERY_KEY}"
    proc = cli_child(["run", "--no-ui", "--rpc-url", url, "--start-date", START, "--days", str(DAYS),
                      "--data-dir", str(tmp_path / "data")], cwd=tmp_path, BACKFILL_RPC_TIMEOUT="2")
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        stop_child(proc)
    assert proc.returncode == 4, out + err
    assert "unreachable" in out + err and f"http://127.0.0.1:{port}/***" in out + err, out + err
    assert not _leaks(out + err), out + err
    assert not (tmp_path / "data").exists(), "an unreachable RPC must not leave a data dir behind"


def test_wrong_chain_id_says_so_without_the_key(tmp_path, clean_chain):
    with FaultProxy(clean_chain.url) as proxy:
        proxy.rules.append(lambda p: {"jsonrpc": "2.0", "id": p["id"], "result": "0x1"}
                           if p.get("method") == "eth_chainId" else None)
        url = f"{proxy.url.rstrip('/')}/v2/{PATH_KEY}?apikey={QUERY_KEY}"
        proc = cli_child(["run", "--no-ui", "--rpc-url", url, "--start-date", START, "--days", str(DAYS),
                          "--data-dir", str(tmp_path / "data")], cwd=tmp_path)
        try:
            out, err = proc.communicate(timeout=180)
        finally:
            stop_child(proc)
    assert proc.returncode == 2, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "chain id 1, expected 137" in lines[0], err
    assert not _leaks(out + err), out + err
    assert not (tmp_path / "data").exists()


def test_provider_error_that_echoes_the_key_is_not_repeated(tmp_path, clean_chain):
    with FaultProxy(clean_chain.url) as proxy:
        seen = {"n": 0}

        def unauthorized(payload):  # the key is revoked mid-run; the provider quotes it back
            if payload.get("method") != "eth_getLogs":
                return None
            seen["n"] += 1
            if seen["n"] <= 3:
                return None
            body = {"jsonrpc": "2.0", "id": payload["id"], "error": {
                "code": -32001, "message": f"Unauthorized: invalid API key {PATH_KEY} (apikey={QUERY_KEY})"}}
            return web.Response(status=401, body=orjson.dumps(body), content_type="application/json")

        proxy.rules.append(unauthorized)
        url = f"{proxy.url.rstrip('/')}/v2/{PATH_KEY}?apikey={QUERY_KEY}"
        data_dir = tmp_path / "data"
        proc = cli_child(["run", "--no-ui", "--rpc-url", url, "--start-date", START, "--days", str(DAYS),
                          "--shards", "3", "--data-dir", str(data_dir)], cwd=tmp_path)
        try:
            out, err = proc.communicate(timeout=180)
        finally:
            stop_child(proc)
    assert proc.returncode == 4, out + err
    assert "Unauthorized" in out + err, "the reason must still be said"
    assert not _leaks(out + err), out + err
    leaked = [str(p) for p in tmp_path.rglob("*") if p.is_file() and _leaks(p.read_bytes())]
    with reader(url_settings(data_dir, "http://127.0.0.1:1/")) as db:
        for (table,) in db.query("SELECT name FROM system.tables WHERE database = currentDatabase()"):
            if _leaks(repr(db.query(f"SELECT * FROM `{table}`"))):
                leaked.append(f"table {table}")
    assert not leaked, leaked
