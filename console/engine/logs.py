"""Plain-text log files under data/backfill/ (worker-N.log, monitor.log, gates.log, on-complete.log).

The runbook's operators grep these (`grep -h "❌\\|Error" data/backfill/worker-*.log`), so
errors carry "❌" and lines are one event each, UTC-stamped. Files are created 0600.
"""

from __future__ import annotations

import logging
from pathlib import Path

LOG_DIR = "backfill"
_FORMAT = logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
_FORMAT.converter = __import__("time").gmtime


def log_dir(data_dir: Path) -> Path:
    return data_dir / LOG_DIR


def file_logger(data_dir: Path, name: str) -> logging.Logger:
    """A logger writing to data/backfill/<name>.log (one handler per file, however often asked)."""
    path = log_dir(data_dir) / f"{name}.log"
    key = f"backfill.{path.resolve()}"
    logger = logging.getLogger(key)
    if not logger.handlers:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            path.touch(mode=0o600)
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(_FORMAT)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def close_loggers(data_dir: Path) -> None:
    """Close every file handler under this data dir (tests reuse tmp dirs; runs end cleanly)."""
    prefix = f"backfill.{log_dir(data_dir).resolve()}"
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(prefix):
            logger = logging.getLogger(name)
            for h in list(logger.handlers):
                h.close()
                logger.removeHandler(h)


def error(logger: logging.Logger, message: str) -> None:
    """An error line the runbook's grep finds."""
    logger.error("❌ Error: %s", message)
