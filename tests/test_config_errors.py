"""Bad configuration: one clear line naming the option, exit 2, nothing written.

Each case runs the real CLI entry point in an empty working directory; afterwards the
directory must still be empty (no data dir, no lock, no log), whatever the source of the bad
value: command line, environment, .env or backfill.toml.
"""

from __future__ import annotations

import pytest

from console.cli import main

SECRET = "k3yS3cr3tV4lu3abcdef0123"

CLI_CASES = [
    (["--days", "0"], "--days"),
    (["--days", "-3"], "--days"),
    (["--days", "ten"], "--days"),
    (["--shards", "0"], "--shards"),
    (["--shards", "2", "--shard-ids", "0,2"], "--shard-ids"),
    (["--shard-ids", "a,b"], "--shard-ids"),
    (["--shard-ids", "1,1"], "--shard-ids"),
    (["--start-date", "2024-02-30"], "--start-date"),
    (["--start-date", "yesterday"], "--start-date"),
    (["--start-date", "2999-01-01"], "--start-date"),
    (["--start-date", "2024-01-10", "--end-date", "2024-01-01"], "--end-date"),
    (["--start-date", "2024-01-01", "--days", "3", "--end-date", "2024-01-02"], "--days"),
    (["--end-date", "2024-01-02"], "--end-date"),
    (["--rpc-url", f"ftp://rpc.example.com/{SECRET}"], "--rpc-url"),
    (["--rpc-url", "not a url"], "--rpc-url"),
    (["--rpc-url", f"https://polygon.example.com/v2/{SECRET}"], "--start-date"),
    (["--rpc-url", f"https://polygon.example.com/v2/{SECRET}", "--start-date", "2024-01-01"], "--days"),
    (["--rpc-url", "http://127.0.0.1:9/", "--start-date", "2026-01-01", "--days", "4000"], "not ended yet"),
    (["--clickhouse", f"mysql://u:{SECRET}@h/"], "--clickhouse"),
    (["--clickhouse", "chdb://relative/path"], "--clickhouse"),
    (["--clickhouse", f"http://u:{SECRET}@host:notaport/"], "--clickhouse"),
    (["--database", "drop table;"], "--database"),
    (["--rps", "0"], "--rps"),
    (["--max-concurrency", "0"], "--max-concurrency"),
    (["--stall-seconds", "-1"], "--stall-seconds"),
    (["--refresh-hz", "0"], "--refresh-hz"),
    (["--usdc-scope", "some"], "--usdc-scope"),
    (["--devchain-profile", "nosuch"], "--devchain-profile"),
    (["--devchain-density", "huge"], "--devchain-density"),
    (["--report-every", "often"], "--report-every"),
    (["--config", "missing.toml"], "--config"),
    (["--no-such-option"], "--no-such-option"),
]

TOML_CASES = [
    ("days = 0\n", "--days"),
    ("shards = 'many'\n", "--shards"),
    ("unknown_key = 1\n", "unknown_key"),
    ("this is not toml\n", "backfill.toml"),
    ("[gates]\nhigh_confidence_strict = 1.5\n", "high_confidence_strict"),
    ("[gates]\nwin_rate_min = 0.6\nwin_rate_max = 0.5\n", "win_rate"),
    ("[protocol]\nctf = [{address = '0x1234'}]\n", "address"),
    ("[protocol]\nextra_infrastructure = ['0xzz']\n", "address"),
    ("[protocol]\nchain_id = 0\n", "chain_id"),
]

ENV_CASES = [
    ({"BACKFILL_SHARDS": "0"}, "--shards"),
    ({"BACKFILL_GATE_INTERVAL": "-5"}, "--gate-interval"),
    ({"BACKFILL_RPC_URL": f"wss://rpc.example.com/{SECRET}"}, "--rpc-url"),
    ({"BACKFILL_USDC_SCOPE": "everything"}, "--usdc-scope"),
]


def _assert_refused(tmp_path, capsys, code, needle):
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = [line for line in err.strip().splitlines() if line]
    assert lines, "no error message"
    assert needle in err, err
    assert SECRET not in out + err, "a secret reached the terminal"
    assert list(tmp_path.iterdir()) == [] or {p.name for p in tmp_path.iterdir()} <= {"backfill.toml", ".env"}


@pytest.mark.parametrize("argv,needle", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_bad_cli_option(tmp_path, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--no-ui", *argv])
    _assert_refused(tmp_path, capsys, code, needle)


@pytest.mark.parametrize("text,needle", TOML_CASES, ids=[t for t, _ in TOML_CASES])
def test_bad_backfill_toml(tmp_path, monkeypatch, capsys, text, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "backfill.toml").write_text(text)
    code = main(["run", "--no-ui"])
    _assert_refused(tmp_path, capsys, code, needle)


@pytest.mark.parametrize("env,needle", ENV_CASES, ids=[next(iter(e)) for e, _ in ENV_CASES])
def test_bad_environment(tmp_path, monkeypatch, capsys, env, needle):
    monkeypatch.chdir(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code = main(["run", "--no-ui"])
    _assert_refused(tmp_path, capsys, code, needle)


def test_bad_dotenv(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("BACKFILL_DAYS=-1\n")
    code = main(["run", "--no-ui"])
    _assert_refused(tmp_path, capsys, code, "--days")


def test_data_dir_that_is_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").write_text("x")
    code = main(["run", "--no-ui"])
    out, err = capsys.readouterr()
    assert code == 2 and "--data-dir" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_precedence_cli_over_env_over_toml(tmp_path, monkeypatch):
    from console.settings import load_settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / "backfill.toml").write_text("shards = 3\nrps = 7\nmax_concurrency = 5\n")
    (tmp_path / ".env").write_text("BACKFILL_RPS=9\nBACKFILL_MAX_CONCURRENCY=6\n")
    monkeypatch.setenv("BACKFILL_MAX_CONCURRENCY", "11")
    s = load_settings({"shards": 4})
    assert (s.shards, s.rps, s.max_concurrency) == (4, 9.0, 11)


def test_status_on_missing_data_dir_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 0
    assert "no run here yet" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
