"""Run the devchain as a child process (the default `rpc_url = "devchain"`).

Why a process: the engine is one asyncio process; serving 10,000-log responses and generating
days in the same process would compete for the GIL. The child:
- listens on a free 127.0.0.1 port (port 0) and prints its URL, which `spawn()` reads;
- exits when its stdin reaches EOF (the parent holds the write end, so if the parent dies the
  pipe closes) or when its parent pid changes — it never outlives the run;
- is stopped by `stop()` (SIGTERM, then SIGKILL after a grace period).
`spawn()` returns only once the child answers eth_chainId.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from .cli import READY_PREFIX

_ROOT = str(Path(__file__).resolve().parents[2])  # the directory holding the `console` package


class DevchainError(RuntimeError):
    pass


class DevchainProcess:
    """A running devchain child; `.url`, `.pid`, `.stop()`, context manager."""

    def __init__(self, proc: subprocess.Popen, url: str, lines: collections.deque, log_path: str | None):
        self.proc = proc
        self.url = url
        self.pid = proc.pid
        self._lines = lines
        self.log_path = log_path

    def output(self) -> str:
        """The child's recent output (for error messages)."""
        return "\n".join(self._lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stats(self, timeout: float = 5.0) -> dict:
        with urllib.request.urlopen(self.url + "/stats", timeout=timeout) as r:
            return json.loads(r.read())

    def stop(self, timeout: float = 5.0) -> None:
        p = self.proc
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        if p.stdin and not p.stdin.closed:
            try:
                p.stdin.close()
            except OSError:
                pass

    def __enter__(self) -> "DevchainProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: never leave a child behind
        try:
            if self.proc.poll() is None:
                self.proc.kill()
        except Exception:
            pass


def _drain(stream, lines: collections.deque, ready: dict, event: threading.Event, log_path: str | None) -> None:
    log = open(log_path, "a", encoding="utf-8") if log_path else None
    try:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if log:
                log.write(line + "\n")
                log.flush()
            if not event.is_set() and line.startswith(READY_PREFIX):
                ready["url"] = line[len(READY_PREFIX):].split()[0]
                event.set()
    finally:
        event.set()
        if log:
            log.close()


def _chain_id(url: str, timeout: float) -> str:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())["result"]


def spawn(density: str = "demo", profile: str = "demo", seed: int = 1, start_date: dt.date | str | None = None,
          days: int | None = None, latency_ms: float = 0, range_cap: int | None = None,
          export_truth: str | os.PathLike | None = None, timeout: float = 180.0,
          log_path: str | None = None) -> DevchainProcess:
    """Start `python -m console.devchain` on a free loopback port and wait until it answers."""
    cmd = [sys.executable, "-m", "console.devchain", "--host", "127.0.0.1", "--port", "0",
           "--profile", profile, "--density", density, "--seed", str(seed),
           "--latency-ms", str(latency_ms), "--watch-stdin", "--parent-pid", str(os.getpid())]
    if start_date is not None:
        cmd += ["--start-date", start_date if isinstance(start_date, str) else start_date.isoformat()]
    if days is not None:
        cmd += ["--days", str(days)]
    if range_cap is not None:
        cmd += ["--range-cap", str(range_cap)]
    if export_truth is not None:
        cmd += ["--export-truth", str(export_truth)]
    env = dict(os.environ)
    env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, cwd=_ROOT)
    lines: collections.deque = collections.deque(maxlen=200)
    ready: dict = {}
    event = threading.Event()
    threading.Thread(target=_drain, args=(proc.stdout, lines, ready, event, log_path),
                     name="devchain-drain", daemon=True).start()
    dp = DevchainProcess(proc, "", lines, log_path)
    deadline = time.monotonic() + timeout
    if not event.wait(max(0.0, deadline - time.monotonic())) or "url" not in ready:
        dp.stop()
        raise DevchainError(f"devchain did not start (exit {proc.poll()}):\n{dp.output()}")
    dp.url = ready["url"]
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            if _chain_id(dp.url, 5.0):
                return dp
        except Exception as exc:  # not ready yet (or a scheduled fault: retry)
            last = exc
            time.sleep(0.05)
    dp.stop()
    raise DevchainError(f"devchain at {dp.url} did not answer eth_chainId ({last}):\n{dp.output()}")
