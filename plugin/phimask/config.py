"""Settings: flags > environment (PHIMASK_*) > config file > defaults, from one table.

Every setting is declared once in SETTINGS with its type, default and help; the CLI
flags, the environment names and the config-file keys are all derived from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

MIB = 1024 * 1024


class SettingsError(ValueError):
    """A bad setting; the message names where it came from (flag, env var, file key)."""


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "phimask"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _listen(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:4317")
    return text


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _vault_url(text: str) -> str:
    if not text.startswith(("sqlite:", "postgresql://", "postgres://")):
        raise ValueError("must be sqlite:///PATH or postgresql://... (a libpq URL)")
    return text


def _optional_listen(text: str) -> str:
    return _listen(text) if text.strip() else ""


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return value


def _downstream(text: str) -> str:
    from .forward.downstream import parse_downstream_url

    parse_downstream_url(text)
    return text


def _path(text: str) -> Path:
    return Path(text).expanduser()


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    help: str
    metavar: str = "VALUE"

    @property
    def env(self) -> str:
        return "PHIMASK_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("listen", _listen, "address for every gRPC service", "HOST:PORT"),
    Setting("workers", _positive_int, "processes that mask batches; 0 masks in the server process",
            "N"),
    Setting("policy", _path, "policy YAML; without it the embedded safe-harbor policy", "FILE"),
    Setting("state_dir", _path, "where phimask keeps local keys and state", "DIR"),
    Setting("keys_dir", _path, "directory of key files <purpose>.<kid>.key (a mounted Secret); "
            "without it, local keys in <state-dir>/keys are made on first use", "DIR"),
    Setting("vault_url", _vault_url, "token vault and quarantine store: sqlite:///PATH, or "
            "postgresql://... shared by replicas; default <state-dir>/vault.db", "URL"),
    Setting("vault_cache_size", _positive_int, "tokens kept in memory per worker", "N"),
    Setting("tls_cert_file", _path, "server certificate (PEM) for TLS on the listener; "
            "re-read when it changes", "FILE"),
    Setting("tls_key_file", _path, "private key (PEM) of --tls-cert-file", "FILE"),
    Setting("tls_client_ca_file", _path, "CA bundle (PEM): callers must present a client "
            "certificate it signed (mTLS)", "FILE"),
    Setting("allow_plaintext", _bool, "serve without TLS on an address other than loopback",
            "BOOL"),
    Setting("access_file", _path, "YAML of callers (certificate names, hashed bearer tokens) "
            "and their roles: ship, reidentify, admin", "FILE"),
    Setting("forward_ca_file", _path, "CA bundle (PEM) to verify https:// downstreams "
            "(default: the system roots)", "FILE"),
    Setting("forward_cert_file", _path, "client certificate (PEM) phimask presents to "
            "https:// downstreams", "FILE"),
    Setting("forward_key_file", _path, "private key (PEM) of --forward-cert-file", "FILE"),
    Setting("max_message_bytes", _positive_int, "largest request accepted (bytes)", "BYTES"),
    Setting("max_batch_records", _positive_int, "most records in one request", "N"),
    Setting("max_inflight", _positive_int,
            "batches in flight before new ones get UNAVAILABLE; 0 means 4 per worker", "N"),
    Setting("drain_seconds", float, "on SIGTERM, how long in-flight batches may take", "SECONDS"),
    Setting("otlp_downstream", _downstream,
            "where masked OTLP logs go (OTLP/gRPC: a Fluent Bit opentelemetry input, "
            "a Collector)", "URL"),
    Setting("vector_downstream", _downstream,
            "where masked Vector events go (a Vector `vector` source)", "URL"),
    Setting("otlp_forward_to", _choice("otlp", "vector"),
            "which downstream masked OTLP logs go to", "otlp|vector"),
    Setting("vector_forward_to", _choice("vector", "otlp"),
            "which downstream masked Vector events go to (metrics and traces have no "
            "OTLP-logs form and are left out)", "vector|otlp"),
    Setting("forward_timeout", float,
            "longest a batch may wait for its downstream when the caller sets no deadline",
            "SECONDS"),
    Setting("scanner", _choice("auto", "hyperscan", "re"), "free-text scanning engine", "ENGINE"),
    Setting("policy_reload_seconds", float, "how often to look for a changed policy file "
            "(0: only on SIGHUP)", "SECONDS"),
    Setting("audit_log", _path, "the hash-chained audit log (JSONL); default "
            "<state-dir>/audit/audit.jsonl", "FILE"),
    Setting("audit_log_max_bytes", _positive_int, "rotate the audit log at this size", "BYTES"),
    Setting("metrics_listen", _optional_listen, "serve Prometheus /metrics here "
            "(e.g. 0.0.0.0:9464); empty: off", "HOST:PORT"),
    Setting("monitor_sample_rate", _fraction, "share of emitted records re-scanned for "
            "residual PHI (0..1)", "RATE"),
    Setting("monitor_mode", _choice("alert", "block"), "residual PHI found: alert (metric, "
            "log, audit) or block (also reject the record)", "alert|block"),
    Setting("log_level", _choice("debug", "info", "warning", "error"), "log level", "LEVEL"),
)


@dataclass(frozen=True)
class Settings:
    listen: str = "127.0.0.1:4317"
    workers: int = field(default_factory=lambda: _cpus())
    policy: Path | None = None
    state_dir: Path = field(default_factory=_default_state_dir)
    keys_dir: Path | None = None
    vault_url: str | None = None
    vault_cache_size: int = 100_000
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    allow_plaintext: bool = False
    access_file: Path | None = None
    forward_ca_file: Path | None = None
    forward_cert_file: Path | None = None
    forward_key_file: Path | None = None
    max_message_bytes: int = 64 * MIB
    max_batch_records: int = 100_000
    max_inflight: int = 0
    drain_seconds: float = 30.0
    otlp_downstream: str | None = None
    vector_downstream: str | None = None
    otlp_forward_to: str = "otlp"
    vector_forward_to: str = "vector"
    forward_timeout: float = 30.0
    scanner: str = "auto"
    policy_reload_seconds: float = 5.0
    audit_log: Path | None = None
    audit_log_max_bytes: int = 64 * MIB
    metrics_listen: str = ""
    monitor_sample_rate: float = 0.01
    monitor_mode: str = "alert"
    log_level: str = "info"

    @property
    def audit_log_path(self) -> Path:
        return self.audit_log or self.state_dir / "audit" / "audit.jsonl"

    @property
    def inflight_limit(self) -> int:
        return self.max_inflight or 4 * max(1, self.workers)


assert {s.name for s in SETTINGS} == {f.name for f in fields(Settings)}
_BY_NAME = {s.name: s for s in SETTINGS}


def _parse(setting: Setting, raw: Any, origin: str) -> Any:
    try:
        return setting.parse(str(raw))
    except ValueError as exc:
        raise SettingsError(f"{origin}: {exc}") from None


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """`flags` holds only the flags the user gave (raw strings or typed values)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if config_file is None and env.get("PHIMASK_CONFIG"):
        config_file = Path(env["PHIMASK_CONFIG"])
    if config_file is not None:
        values.update(_from_file(config_file))
    for setting in SETTINGS:
        if env.get(setting.env, "") != "":
            values[setting.name] = _parse(setting, env[setting.env], f"environment {setting.env}")
    for name, raw in (flags or {}).items():
        if raw is not None:
            values[name] = _parse(_BY_NAME[name], raw, f"flag {_BY_NAME[name].flag}")
    return Settings(**values)


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(f"config file {path}{where}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: must be a mapping of setting: value")
    values: dict[str, Any] = {}
    for key, raw in data.items():
        setting = _BY_NAME.get(str(key).replace("-", "_"))
        if setting is None:
            raise SettingsError(f"config file {path}: unknown setting {key!r}")
        values[setting.name] = _parse(setting, raw, f"config file {path} key {key!r}")
    return values
