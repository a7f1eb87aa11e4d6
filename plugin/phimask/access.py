"""Who may call what (HIPAA 164.312(a)(1) access control, (d) authentication).

A caller is identified by its verified client certificate (mTLS) or by a bearer token
(`authorization: Bearer <token>`) whose SHA-256 is in the access file; tokens are
never kept or logged in clear. Each RPC needs one role (METHOD_ROLES). Without an
access file every caller gets `ship` only, so a sidecar on loopback keeps working
and re-identification stays closed until an operator names who may do it.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from .audit import audit
from .config import SettingsError
from .errors import CallError

log = logging.getLogger("phimask.access")

SHIP, REIDENTIFY, ADMIN = "ship", "reidentify", "admin"
ROLES = frozenset({SHIP, REIDENTIFY, ADMIN})
OPEN = None  # a method anyone may call: probes and discovery
# Every RPC phimask serves, with the role it needs. A handler must be listed here to be
# served (`Authorizer.gate` raises KeyError otherwise), so a new one cannot be open by
# accident.
METHOD_ROLES: Mapping[str, str | None] = {
    "/phimask.v1.BatchTransform/Transform": SHIP,
    "/phimask.v1.BatchTransform/TransformStream": SHIP,
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export": SHIP,
    "/vector.Vector/PushEvents": SHIP,
    "/vector.Vector/HealthCheck": OPEN,
    "/phimask.v1.Reidentify/Detokenize": REIDENTIFY,
}
# Roles whose every granted call is audited, not only the denied ones.
AUDITED_ROLES = frozenset({REIDENTIFY, ADMIN})

ANONYMOUS = "anonymous"
# Certificate names in the order one is picked to name a caller: SANs, then the CN.
_CERT_NAME_KEYS = ("peer_dns", "peer_uri", "peer_email", "x509_common_name")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENTRY_KEYS = frozenset({"name", "certificate", "token_sha256", "roles"})

Via = Literal["certificate", "token", "anonymous"]


@dataclass(frozen=True)
class Caller:
    name: str
    roles: frozenset[str]
    via: Via


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "phimask_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the RPC being handled (set by the receivers' authorization wrapper
    for the handler's task), None outside one."""
    return _current.get()


def bind_caller(caller: Caller) -> None:
    """Make `caller` the current caller for the rest of this task (one RPC)."""
    _current.set(caller)


def hash_token(token: str) -> str:
    """What goes in an access file's `token_sha256` for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthContext(Protocol):
    """What authorization needs of a grpc(.aio) ServicerContext."""

    def auth_context(self) -> Mapping[str, Any]: ...
    def invocation_metadata(self) -> Any: ...
    def peer(self) -> str: ...


@dataclass(frozen=True)
class Entry:
    name: str
    roles: frozenset[str]
    certificate: str | None = None
    token_sha256: bytes | None = None  # the digest, 32 bytes


@dataclass(frozen=True)
class AccessPolicy:
    source: Path
    callers: tuple[Entry, ...]

    def by_certificate(self, names: list[str]) -> Entry | None:
        """The first caller in file order whose `certificate` is one of `names`."""
        for entry in self.callers:
            if entry.certificate is not None and entry.certificate in names:
                return entry
        return None

    def by_token(self, token: str) -> Entry | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self.callers:  # compare against all: no early exit to time
            if entry.token_sha256 is not None and hmac.compare_digest(digest,
                                                                       entry.token_sha256):
                found = entry
        return found


def load_access_file(path: Path) -> AccessPolicy:
    """Parse and validate strictly. SettingsError names the file, the entry and the key,
    never a value that could be a token."""
    where = f"access file {path}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(f"{where}{line}: not valid YAML") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: must be a mapping with the key 'callers'")
    unknown = sorted(str(k) for k in data if k != "callers")
    if unknown:
        raise SettingsError(f"{where}: unknown key {unknown[0]!r} (only 'callers')")
    raw = data.get("callers")
    if not isinstance(raw, list) or not raw:
        raise SettingsError(f"{where}: 'callers' must be a non-empty list")
    entries: list[Entry] = []
    for index, item in enumerate(raw):
        entry = _entry(f"{where}: callers[{index}]", item)
        for other_index, other in enumerate(entries):
            for key, mine, theirs in (("name", entry.name, other.name),
                                      ("certificate", entry.certificate, other.certificate),
                                      ("token_sha256", entry.token_sha256, other.token_sha256)):
                if mine is not None and mine == theirs:
                    raise SettingsError(f"{where}: callers[{index}].{key}: the same as "
                                        f"callers[{other_index}].{key}")
        entries.append(entry)
    return AccessPolicy(path, tuple(entries))


def _entry(where: str, item: object) -> Entry:
    if not isinstance(item, dict):
        raise SettingsError(f"{where}: must be a mapping (name, certificate or "
                            "token_sha256, roles)")
    unknown = sorted(str(k) for k in item if k not in _ENTRY_KEYS)
    if unknown:
        raise SettingsError(f"{where}: unknown key {unknown[0]!r} "
                            f"(known: {', '.join(sorted(_ENTRY_KEYS))})")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SettingsError(f"{where}.name: must be a non-empty string")
    certificate = item.get("certificate")
    if certificate is not None and (not isinstance(certificate, str) or not certificate):
        raise SettingsError(f"{where}.certificate: must be a non-empty string (a SAN or CN)")
    token = item.get("token_sha256")
    digest = None
    if token is not None:
        if not isinstance(token, str) or not _HEX64.fullmatch(token.lower()):
            # Not echoed: a token pasted here by mistake must not reach a log.
            raise SettingsError(f"{where}.token_sha256: must be 64 hex digits, the SHA-256 "
                                "of the token (`phimask access hash-token`), not the token")
        digest = bytes.fromhex(token)
    if certificate is None and digest is None:
        raise SettingsError(f"{where}: needs 'certificate' or 'token_sha256' to identify "
                            "the caller")
    roles = item.get("roles")
    if not isinstance(roles, list) or not roles:
        raise SettingsError(f"{where}.roles: must be a non-empty list of "
                            f"{', '.join(sorted(ROLES))}")
    for role in roles:
        if not isinstance(role, str) or role not in ROLES:
            shown = repr(role) if isinstance(role, str) and len(role) <= 32 else "a value"
            raise SettingsError(f"{where}.roles: unknown role {shown} "
                                f"(known: {', '.join(sorted(ROLES))})")
    return Entry(name, frozenset(roles), certificate, digest)


def certificate_names(context: AuthContext) -> list[str]:
    """The verified client certificate's SANs (DNS, URI, email) and CN; empty without
    mTLS. gRPC only puts names here after the handshake verified the chain."""
    auth = context.auth_context()
    return [value.decode(errors="replace")
            for key in _CERT_NAME_KEYS for value in auth.get(key, ())]


class _Unauthenticated(Exception):
    def __init__(self, reason: str, caller: str) -> None:
        super().__init__(reason)
        self.reason, self.caller = reason, caller


def _bearer(context: AuthContext) -> str | None:
    values = [v for k, v in context.invocation_metadata() or () if k == "authorization"]
    if not values:
        return None
    scheme, _, token = str(values[0]).partition(" ")
    if len(values) > 1 or scheme.lower() != "bearer" or not token.strip():
        raise _Unauthenticated("malformed_authorization", "unknown")
    return token.strip()


Gate = Callable[[AuthContext], Caller]


class Authorizer:
    """Decides, per call, who the caller is and whether it has the method's role."""

    def __init__(self, policy: AccessPolicy | None) -> None:
        self.policy = policy

    def _identify(self, context: AuthContext) -> Caller:
        """Raises _Unauthenticated when an access file is in force and names nobody."""
        names = certificate_names(context)
        if self.policy is None:
            # No access file: a token means nothing, a certificate only names the caller.
            if names:
                return Caller(names[0], frozenset({SHIP}), "certificate")
            return Caller(ANONYMOUS, frozenset({SHIP}), "anonymous")
        token = _bearer(context)
        if token is not None:  # an explicit credential that fails is not overridden
            entry = self.policy.by_token(token)
            if entry is None:
                raise _Unauthenticated("unknown_token", "unknown")
            return Caller(entry.name, entry.roles, "token")
        if names:
            entry = self.policy.by_certificate(names)
            if entry is None:
                raise _Unauthenticated("unknown_certificate", names[0])
            return Caller(entry.name, entry.roles, "certificate")
        raise _Unauthenticated("no_credentials", ANONYMOUS)

    def check(self, context: AuthContext, role: str, method: str) -> Caller:
        """The caller, if it may call `method` (which needs `role`); otherwise CallError
        UNAUTHENTICATED or PERMISSION_DENIED, audited."""
        try:
            caller = self._identify(context)
        except _Unauthenticated as exc:
            audit("authz.denied", caller=exc.caller, method=method, role=role,
                  reason=exc.reason, peer=context.peer())
            raise CallError("UNAUTHENTICATED", "phimask needs a client certificate or a "
                            "bearer token it knows for this call") from None
        if role not in caller.roles:
            audit("authz.denied", caller=caller.name, via=caller.via, method=method,
                  role=role, reason="missing_role", peer=context.peer())
            raise CallError("PERMISSION_DENIED",
                            f"caller {caller.name!r} does not have the {role!r} role")
        if role in AUDITED_ROLES:
            audit("authz.allowed", caller=caller.name, via=caller.via, method=method,
                  role=role, peer=context.peer())
        return caller

    def gate(self, method: str) -> Gate:
        """The check for `method` (a full name, `/package.Service/Method`), by the role
        METHOD_ROLES gives it. KeyError for a method not in the table."""
        role = METHOD_ROLES[method]
        if role is None:
            return lambda context: Caller(ANONYMOUS, frozenset(), "anonymous")
        return lambda context: self.check(context, role, method)

    def warn_unreachable(self, *, mutual_tls: bool, tls: bool) -> None:
        """Log access-file entries the listener's TLS setup makes useless or risky."""
        if self.policy is None:
            return
        if not mutual_tls and any(e.certificate for e in self.policy.callers):
            log.warning("the access file names certificates, but without "
                        "--tls-client-ca-file no caller presents one",
                        extra={"access_file": str(self.policy.source)})
        if not tls and any(e.token_sha256 for e in self.policy.callers):
            log.warning("bearer tokens are accepted on a listener without TLS",
                        extra={"access_file": str(self.policy.source)})


def authorizer_for(access_file: Path | None) -> Authorizer:
    return Authorizer(load_access_file(access_file) if access_file is not None else None)
