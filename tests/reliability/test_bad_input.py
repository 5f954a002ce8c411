"""Issue 7.6: the bad-input catalogue, continued (tests/test_config_errors.py has the first ~45).

Every case runs the real CLI entry point in a scratch working directory and must give exit 2,
exactly one line on stderr that names what was wrong (argparse adds its usage line above its
own error line), no secret on the terminal, and leave the directory exactly as it was: no data
dir, no lock, no log. New here: sub-commands other than `run` (status, screenshot, gates,
rebuild, attach) with bad options or no run to act on, unusable data dirs (under a file,
immutable: the tests run as root, so `chattr +i` stands in for a read-only dir), a DSN
that cannot be reached or used, and more env / .env / backfill.toml values.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reliability.checks import closed_port

from console.cli import main

SECRET = "PaSsW0rdS3cr3tXYZ"




# (id, argv, env, files, needle)
CASES = [
    ("data dir under a file", ["run", "--no-ui", "--data-dir", "afile/sub"], {}, {}, "--data-dir"),
    ("env data dir under a file", ["run", "--no-ui"], {"BACKFILL_DATA_DIR": "afile/sub"}, {}, "--data-dir"),
    ("days above the bound", ["run", "--no-ui", "--days", "20001"], {}, {}, "--days"),
    ("shards above the bound", ["run", "--no-ui", "--shards", "257"], {}, {}, "--shards"),
    ("seed not a number", ["run", "--no-ui", "--devchain-seed", "abc"], {}, {}, "--devchain-seed"),
    ("end date impossible", ["run", "--no-ui", "--start-date", "2024-01-01", "--end-date", "2024-13-01"], {}, {},
     "--end-date"),
    ("max concurrency above the bound", ["run", "--no-ui", "--max-concurrency", "5000"], {}, {},
     "--max-concurrency"),
    ("negative rps", ["run", "--no-ui", "--rps", "-1"], {}, {}, "--rps"),
    ("zero monitor interval", ["run", "--no-ui", "--monitor-interval", "0"], {}, {}, "--monitor-interval"),
    ("zero report interval", ["run", "--no-ui", "--report-every", "0s"], {}, {}, "--report-every"),
    ("empty database name", ["run", "--no-ui", "--database", ""], {}, {}, "--database"),
    ("refresh rate above the bound", ["run", "--no-ui", "--refresh-hz", "1000"], {}, {}, "--refresh-hz"),
    ("config is a directory", ["run", "--no-ui", "--config", "adir"], {}, {}, "--config"),
    ("status: bad option value", ["status", "--shards", "0"], {}, {}, "--shards"),
    ("status: unknown option", ["status", "--bogus"], {}, {}, "--bogus"),
    ("status --json: bad option value", ["status", "--json", "--days", "-1"], {}, {}, "--days"),
    ("screenshot: size garbage", ["screenshot", "--size", "garbage"], {}, {}, "--size"),
    ("screenshot: size out of range", ["screenshot", "--size", "10x10"], {}, {}, "--size"),
    ("screenshot: size with three parts", ["screenshot", "--size", "160x48x2"], {}, {}, "--size"),
    ("screenshot: size without columns", ["screenshot", "--size", "x48"], {}, {}, "--size"),
    ("screenshot: negative size", ["screenshot", "--size", "-160x48"], {}, {}, "--size"),
    ("screenshot: not svg or png", ["screenshot", "--out", "report.txt"], {}, {}, "--out"),
    ("screenshot: no run here", ["screenshot"], {}, {}, "no run here yet"),
    ("gates: no run here", ["gates"], {}, {}, "no run here yet"),
    ("gates: bad option value", ["gates", "--strict", "--shards", "0"], {}, {}, "--shards"),
    ("gates: unknown option", ["gates", "--strictest"], {}, {}, "--strictest"),
    ("rebuild: no run here", ["rebuild"], {}, {}, "no run here yet"),
    ("attach: no run here", ["attach"], {}, {}, "no run here yet"),
    ("env shard ids out of range", ["run", "--no-ui"], {"BACKFILL_SHARD_IDS": "0,9"}, {}, "--shard-ids"),
    ("env rpc url without host", ["run", "--no-ui"], {"BACKFILL_RPC_URL": "http://"}, {}, "--rpc-url"),
    ("env day attempts zero", ["run", "--no-ui"], {"BACKFILL_MAX_DAY_ATTEMPTS": "0"}, {}, "--max-day-attempts"),
    ("env negative rpc timeout", ["run", "--no-ui"], {"BACKFILL_RPC_TIMEOUT": "-1"}, {}, "--rpc-timeout"),
    ("env unknown profile", ["run", "--no-ui"], {"BACKFILL_DEVCHAIN_PROFILE": "mainnet"}, {},
     "--devchain-profile"),
    ("env secret url with bad scheme",
     ["run", "--no-ui"], {"BACKFILL_RPC_URL": f"ws://rpc.example.com/v2/{SECRET}?apikey={SECRET}"}, {},
     "--rpc-url"),
    (".env unknown variable", ["run", "--no-ui"], {}, {".env": "BACKFILL_NO_SUCH=1\n"}, "no_such"),
    (".env impossible date", ["run", "--no-ui"], {}, {".env": "BACKFILL_START_DATE=2024-02-31\n"},
     "--start-date"),
    (".env dsn with password and bad scheme", ["run", "--no-ui"], {},
     {".env": f"BACKFILL_CLICKHOUSE=mysql://u:{SECRET}@127.0.0.1/\n"}, "--clickhouse"),
    ("toml threshold below 0", ["run", "--no-ui"], {}, {"backfill.toml": "[gates]\nsane_price_relaxed = -0.1\n"},
     "sane_price_relaxed"),
    ("toml threshold above 1", ["run", "--no-ui"], {}, {"backfill.toml": "[gates]\ncoverage = 2\n"}, "coverage"),
    ("toml unknown gate", ["run", "--no-ui"], {}, {"backfill.toml": "[gates]\nnope = 1\n"}, "nope"),
    ("toml date not a date", ["run", "--no-ui"], {},
     {"backfill.toml": "[protocol]\ncollateral = [{address = '0x2791bca1f2de4661ed88a30c99a7a9449aa84174', "
                       "active_from = 'notadate'}]\n"}, "active_from"),
    ("toml unknown deployment key", ["run", "--no-ui"], {},
     {"backfill.toml": "[protocol]\nexchanges = [{address = '0x2791bca1f2de4661ed88a30c99a7a9449aa84174', "
                       "bogus = 1}]\n"}, "bogus"),
    ("toml negative finality", ["run", "--no-ui"], {}, {"backfill.toml": "[protocol]\nfinality_blocks = -1\n"},
     "finality_blocks"),
    ("toml chain id not a number", ["run", "--no-ui"], {}, {"backfill.toml": "[protocol]\nchain_id = 'polygon'\n"},
     "chain_id"),
    ("toml not utf-8", ["run", "--no-ui"], {}, {"backfill.toml": b"days = \xff\xfe\n"}, "backfill.toml"),
    ("toml secret url without start date", ["run", "--no-ui"], {},
     {"backfill.toml": f"rpc_url = 'https://u:{SECRET}@rpc.example.com/v2/{SECRET}'\n"}, "--start-date"),
]


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _assert_refused(code, out: str, err: str, needle: str, before: dict, root: Path) -> None:
    assert code == 2, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, err
    usage = [line for line in lines if line not in errors]
    assert not usage or lines[0].startswith("usage:"), f"more than one line of explanation:\n{err}"
    assert needle in errors[0], errors[0]
    assert SECRET not in out + err, "a secret reached the terminal"
    assert "Traceback" not in out + err
    assert _tree(root) == before, "a refused command wrote into the working directory"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file, not a directory")
    (tmp_path / "adir").mkdir()
    return tmp_path


@pytest.mark.parametrize("argv,env,files,needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_on_one_line(scratch, monkeypatch, capsys, argv, env, files, needle):
    for name, text in files.items():
        (scratch / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = _tree(scratch)
    code = main(argv)
    out, err = capsys.readouterr()
    _assert_refused(code, out, err, needle, before, scratch)


# --- unusable data dirs (root ignores permissions; an immutable inode it cannot change) -----------
@pytest.fixture
def immutable(scratch):
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available")
    made: list[Path] = []

    def make(path: Path) -> Path:
        path.mkdir(exist_ok=True)
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("this filesystem does not support chattr +i")
        made.append(path)
        return path

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.mark.parametrize("target", ["data dir itself", "its parent"])
def test_read_only_data_dir_is_refused(scratch, immutable, capsys, target):
    if target == "data dir itself":
        data_dir = immutable(scratch / "data")
    else:
        data_dir = immutable(scratch / "parent") / "data"
    before = _tree(scratch)
    code = main(["run", "--no-ui", "--devchain-density", "small", "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    _assert_refused(code, out, err, "--data-dir", before, scratch)


# --- a store that cannot be reached or used at start is bad input, refused before writing -----------
@pytest.mark.parametrize("dsn", ["http://default:{secret}@127.0.0.1:{port}/", "chdb://{root}/afile/clickhouse"],
                         ids=["closed port", "chdb path under a file"])
def test_unusable_store_dsn_is_refused_before_anything_is_written(scratch, capsys, dsn):
    dsn = dsn.format(secret=SECRET, port=closed_port(), root=scratch)
    before = _tree(scratch)
    try:
        code = main(["run", "--no-ui", "--devchain-density", "small", "--clickhouse", dsn])
    except Exception as exc:  # what the user gets: a traceback and exit 1
        code = f"uncaught {type(exc).__name__}: {exc}"
    out, err = capsys.readouterr()
    _assert_refused(code, out, err, "--clickhouse", before, scratch)


# --- screenshot of a real run to a place that cannot be written ---------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, clean_chain):
    import asyncio

    from console.engine.launch import run_engine
    from tests.reliability.checks import url_settings

    settings = url_settings(tmp_path_factory.mktemp("finished") / "data", clean_chain.url)
    assert asyncio.run(run_engine(settings, say=lambda m: None)) == 0
    return settings.data_dir


@pytest.mark.parametrize("where", ["under a file", "in a read-only dir"])
def test_screenshot_to_an_unwritable_place_is_refused_on_one_line(scratch, immutable, finished_run, capsys,
                                                                  where):
    out = scratch / "afile" / "shot.svg" if where == "under a file" else immutable(scratch / "ro") / "shot.png"
    before, run_before = _tree(scratch), _tree(finished_run)
    try:
        code = main(["screenshot", "--data-dir", str(finished_run), "--out", str(out)])
    except Exception as exc:  # what the operator gets: a traceback and exit 1
        code = f"uncaught {type(exc).__name__}: {exc}"
    stdout, err = capsys.readouterr()
    _assert_refused(code, stdout, err, "--out", before, scratch)
    assert _tree(finished_run) == run_before
