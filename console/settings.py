"""Configuration: one pydantic-settings model, from CLI > env BACKFILL_* > .env > backfill.toml > defaults.

Why one model: the CLI, the headless runner, the console and the tests all see the same
validated values, and a bad value is caught here, before anything touches the disk. Every
error names the option the user typed, the value (secrets redacted) and what was expected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from console.protocol import Deployment, ProtocolProfile, is_address

DEVCHAIN = "devchain"
DEVCHAIN_PROFILES = (
    "clean", "demo", "alchemy", "alchemy500", "infura", "quicknode", "ankr", "erigon",
    "polygon", "ratelimit", "flaky", "hostile",
)
DEVCHAIN_DENSITIES = ("demo", "small", "full")


class ConfigError(ValueError):
    """Bad configuration or input: the CLI prints it on one line and exits 2."""


# --- secrets -------------------------------------------------------------------------------
_KEYLIKE = re.compile(r"[A-Za-z0-9_\-]{6,}")


def redact(url: str | SecretStr | None) -> str:
    """A URL or DSN safe to print: no user:password, no path, no query.

    Providers put API keys in the path (Alchemy /v2/<key>, Infura /v3/<key>, QuickNode
    /<token>/) or the query (?apikey=); keeping only scheme://host[:port] + "/***" is the one
    rule that hides all of them. `devchain` and `chdb://` paths carry no secret and stay.
    """
    if url is None:
        return ""
    text = url.get_secret_value() if isinstance(url, SecretStr) else str(url)
    if text == DEVCHAIN or text.startswith("chdb://"):
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return "***"
    if not parts.scheme or not parts.hostname:
        return "***"
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:  # a malformed port is shown as nothing rather than crash the message
        port = None
    if port:
        host = f"{host}:{port}"
    hidden = bool(parts.username or parts.password or parts.query or parts.fragment
                  or parts.path.strip("/"))
    return urlunsplit((parts.scheme, host, "/***" if hidden else "/", "", ""))


def secret_fragments(url: str | SecretStr | None) -> set[str]:
    """The pieces of a URL or DSN that may be a secret: user, password, key-like path segments
    and query values. A provider that quotes them back ("invalid API key <key>") must not get
    them into a log through us, so every RPC error message is scrubbed of these."""
    if url is None:
        return set()
    text = url.get_secret_value() if isinstance(url, SecretStr) else str(url)
    if text == DEVCHAIN or text.startswith("chdb://"):
        return set()
    try:
        parts = urlsplit(text)
    except ValueError:
        return set()
    def keylike(piece: str) -> bool:  # "v2", "polygon" are not keys; "abc123..." may be
        return bool(_KEYLIKE.fullmatch(piece)) and (len(piece) >= 16 or any(c.isdigit() for c in piece))

    found = {p for p in (parts.username, parts.password) if p and len(p) >= 4}
    found.update(seg for seg in parts.path.split("/") if keylike(seg))
    found.update(v for pair in parts.query.split("&") for v in pair.split("=")[1:] if keylike(v))
    return found


def parse_duration(value: str | int | float | None) -> float | None:
    """'90', '90s', '10m', '2h', '1d' -> seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
    if not m:
        raise ValueError("expected a duration like 30s, 10m, 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


# --- protocol profile in backfill.toml -------------------------------------------------------
class DeploymentModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str
    active_from: dt.date | None = None
    active_until: dt.date | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not is_address(v):
            raise ValueError("expected a 0x-prefixed 20-byte hex address")
        return v.lower()


def _deployments(group: tuple[Deployment, ...]) -> list[DeploymentModel]:
    return [DeploymentModel(address=d.address, active_from=d.active_from, active_until=d.active_until)
            for d in group]


_DEFAULT = ProtocolProfile()


class ProtocolModel(BaseModel):
    """`[protocol]` in backfill.toml: point the tool at other contracts or another chain."""

    model_config = ConfigDict(extra="forbid")
    name: str = _DEFAULT.name
    chain_id: int = Field(_DEFAULT.chain_id, gt=0)
    finality_blocks: int = Field(_DEFAULT.finality_blocks, ge=0)
    collateral: list[DeploymentModel] = Field(default_factory=lambda: _deployments(_DEFAULT.collateral))
    ctf: list[DeploymentModel] = Field(default_factory=lambda: _deployments(_DEFAULT.ctf))
    exchanges: list[DeploymentModel] = Field(default_factory=lambda: _deployments(_DEFAULT.exchanges))
    adapters: list[DeploymentModel] = Field(default_factory=lambda: _deployments(_DEFAULT.adapters))
    extra_infrastructure: list[str] = Field(default_factory=list)

    @field_validator("extra_infrastructure")
    @classmethod
    def _infra(cls, v: list[str]) -> list[str]:
        for a in v:
            if not is_address(a):
                raise ValueError(f"{a!r} is not a 0x-prefixed 20-byte hex address")
        return [a.lower() for a in v]

    def build(self) -> ProtocolProfile:
        def dep(group: list[DeploymentModel]) -> tuple[Deployment, ...]:
            return tuple(Deployment(d.address, d.active_from, d.active_until) for d in group)

        return ProtocolProfile(
            name=self.name, chain_id=self.chain_id, finality_blocks=self.finality_blocks,
            collateral=dep(self.collateral), ctf=dep(self.ctf), exchanges=dep(self.exchanges),
            adapters=dep(self.adapters), extra_infrastructure=tuple(self.extra_infrastructure),
        )


class GateThresholds(BaseModel):
    """Safety-gate thresholds (DESIGN §6.8). Shares are fractions in 0..1."""

    model_config = ConfigDict(extra="forbid")
    high_confidence_relaxed: float = Field(0.60, ge=0, le=1)
    high_confidence_strict: float = Field(0.80, ge=0, le=1)
    sane_price_relaxed: float = Field(0.80, ge=0, le=1)
    sane_price_strict: float = Field(0.95, ge=0, le=1)
    coverage: float = Field(1.0, ge=0, le=1)
    win_rate_min: float = Field(0.40, ge=0, le=1)
    win_rate_max: float = Field(0.50, ge=0, le=1)

    @model_validator(mode="after")
    def _band(self) -> "GateThresholds":
        if self.win_rate_min > self.win_rate_max:
            raise ValueError("win_rate_min must not exceed win_rate_max")
        return self


# --- the settings ----------------------------------------------------------------------------
class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BACKFILL_", env_file=".env", env_file_encoding="utf-8",
        extra="forbid", env_nested_delimiter="__", validate_default=True,
    )

    rpc_url: SecretStr = Field(SecretStr(DEVCHAIN), description="JSON-RPC URL (secret) or 'devchain'")
    start_date: dt.date | None = Field(None, description="first UTC day to backfill")
    days: int | None = Field(None, gt=0, le=20000, description="number of days")
    end_date: dt.date | None = Field(None, description="last UTC day (inclusive), instead of --days")
    shards: int = Field(8, ge=1, le=256)
    shard_ids: list[int] | None = Field(None, description="shards this process runs (default all)")
    clickhouse: SecretStr | None = Field(None, description="ClickHouse DSN; default chdb:///<data_dir>/clickhouse")
    database: str = Field("backfill", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    data_dir: Path = Path("data")
    rps: float | None = Field(None, gt=0, le=100000)
    max_concurrency: int = Field(16, ge=1, le=1024)
    stall_seconds: float = Field(300, gt=0)
    monitor_interval: float = Field(30, gt=0)
    gate_interval: float = Field(1800, gt=0)
    usdc_scope: Literal["polymarket", "all"] = "polymarket"
    no_rebuild: bool = False
    reset: bool = False
    refresh_hz: float = Field(4, gt=0, le=60)
    read_only: bool = False
    report_every: float | None = Field(None, description="headless: screenshot report every DURATION")
    rpc_timeout: float = Field(30, gt=0)
    max_day_attempts: int = Field(5, ge=1, le=100, description="fetch attempts before a day stays FAILED")
    devchain_profile: str = "demo"
    devchain_density: str = "demo"
    devchain_seed: int = 1
    gates: GateThresholds = Field(default_factory=GateThresholds)
    protocol: ProtocolModel = Field(default_factory=ProtocolModel)

    _toml_path: Path | None = None  # set by load_settings(); class-level, read by sources

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = getattr(cls, "_config_file", None) or Path("backfill.toml")
        return (init_settings, env_settings, dotenv_settings,
                TomlConfigSettingsSource(settings_cls, toml_file=toml_path))

    # --- field checks ------------------------------------------------------------------------
    @field_validator("report_every", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        seconds = parse_duration(v)
        if seconds is not None and seconds <= 0:
            raise ValueError("expected a positive duration like 30s, 10m, 2h")
        return seconds

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return [int(x) for x in v.replace(" ", "").split(",") if x != ""]
            except ValueError:
                raise ValueError("expected a comma-separated list of shard numbers like 0,1,2") from None
        return v

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, v: SecretStr) -> SecretStr:
        text = v.get_secret_value().strip()
        if text == DEVCHAIN:
            return SecretStr(text)
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected 'devchain' or an http(s):// JSON-RPC URL")
        return SecretStr(text)

    @field_validator("clickhouse")
    @classmethod
    def _dsn(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return v
        text = v.get_secret_value().strip()
        if text.startswith("chdb://"):
            if not text[len("chdb://"):].startswith("/"):
                raise ValueError("expected chdb:///absolute/path")
            return SecretStr(text)
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https", "clickhouse", "clickhouses") or not parts.hostname:
            raise ValueError("expected chdb:///path or http(s)://user:pass@host:8123/")
        try:
            parts.port
        except ValueError:
            raise ValueError("the port is not a number") from None
        return SecretStr(text)

    @field_validator("devchain_profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        if v not in DEVCHAIN_PROFILES:
            raise ValueError(f"expected one of {', '.join(DEVCHAIN_PROFILES)}")
        return v

    @field_validator("devchain_density")
    @classmethod
    def _density(cls, v: str) -> str:
        if v not in DEVCHAIN_DENSITIES:
            raise ValueError(f"expected one of {', '.join(DEVCHAIN_DENSITIES)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.days is not None and self.end_date is not None:
            raise ConfigError("--days and --end-date: give one of them, not both")
        if self.end_date is not None:
            if self.start_date is None:
                raise ConfigError("--end-date needs --start-date")
            if self.end_date < self.start_date:
                raise ConfigError(
                    f"--end-date {self.end_date} is before --start-date {self.start_date}")
        if self.start_date is not None and self.start_date > dt.datetime.now(dt.timezone.utc).date():
            raise ConfigError(f"--start-date {self.start_date} is in the future")
        if not self.is_devchain and self.start_date is None:
            raise ConfigError("--start-date is required with a real --rpc-url (e.g. 2023-01-01)")
        if self.shard_ids is not None:
            bad = [s for s in self.shard_ids if not 0 <= s < self.shards]
            if bad or not self.shard_ids:
                raise ConfigError(
                    f"--shard-ids {','.join(map(str, self.shard_ids)) or '(empty)'}: expected "
                    f"shard numbers from 0 to {self.shards - 1} (--shards {self.shards})")
            if len(set(self.shard_ids)) != len(self.shard_ids):
                raise ConfigError("--shard-ids lists a shard twice")
        return self

    # --- derived -----------------------------------------------------------------------------
    @property
    def is_devchain(self) -> bool:
        return self.rpc_url.get_secret_value() == DEVCHAIN

    @property
    def dsn(self) -> str:
        if self.clickhouse is not None:
            return self.clickhouse.get_secret_value()
        return f"chdb://{self.data_dir.resolve() / 'clickhouse'}"

    @property
    def run_shard_ids(self) -> list[int]:
        return list(self.shard_ids) if self.shard_ids is not None else list(range(self.shards))

    def profile(self) -> ProtocolProfile:
        return self.protocol.build()

    def day_count(self, default_days: int) -> int:
        if self.days is not None:
            return self.days
        if self.end_date is not None and self.start_date is not None:
            return (self.end_date - self.start_date).days + 1
        return default_days

    def fingerprint(self, start_date: dt.date, days: int) -> str:
        """What makes two runs the same run: the chain data asked for and where it goes.

        The RPC URL is not part of it (switching providers mid-run is fine and the URL is a
        secret); shard count is not either (days are claimed, not pre-assigned).
        """
        payload = {
            "chain_id": self.protocol.chain_id, "start_date": start_date.isoformat(), "days": days,
            "usdc_scope": self.usdc_scope, "database": self.database,
            "protocol": self.protocol.model_dump(mode="json"),
            "devchain": [self.devchain_density, self.devchain_seed] if self.is_devchain else None,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def public_dict(self) -> dict[str, Any]:
        """Settings with secrets redacted, for logs and reports."""
        data = self.model_dump(mode="json")
        data["rpc_url"] = redact(self.rpc_url)
        data["clickhouse"] = redact(self.dsn)
        return data


# --- loading with clear errors ---------------------------------------------------------------
_FIELD_FLAGS = {name: "--" + name.replace("_", "-") for name in Settings.model_fields}
_SECRET_FIELDS = {"rpc_url", "clickhouse"}


def _describe(error: dict) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    field = loc[0] if loc else ""
    flag = _FIELD_FLAGS.get(field, field)
    if len(loc) > 1:
        flag = f"{flag} ({'.'.join(loc[1:])})" if field in ("gates", "protocol") else flag
    value = error.get("input")
    if field in _SECRET_FIELDS and value is not None:
        shown = redact(value if isinstance(value, str) else str(value))
    elif isinstance(value, (dict, list)):
        shown = None
    else:
        shown = value
    msg = error.get("msg", "invalid").removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return f"unknown option {flag!s} (backfill.toml key or BACKFILL_ variable); see --help"
    if shown is None:
        return f"{flag}: {msg}"
    return f"{flag} {shown!r}: {msg}"


def load_settings(cli: dict[str, Any] | None = None, *, config_file: Path | None = None) -> Settings:
    """Build Settings or raise ConfigError with one human line. Touches no file but reads."""
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    path = config_file or Path("backfill.toml")
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"--config {config_file}: no such file")
    if path.is_file():
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    Settings._config_file = path  # type: ignore[attr-defined]
    try:
        return Settings(**cli)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        if first.get("type") == "value_error" and isinstance(first.get("ctx", {}).get("error"), ConfigError):
            raise ConfigError(str(first["ctx"]["error"])) from None
        raise ConfigError(_describe(first)) from None
    except ConfigError:
        raise
    except ValueError as exc:  # e.g. a .env/env value pydantic-settings cannot even parse
        raise ConfigError(str(exc).splitlines()[0]) from None
