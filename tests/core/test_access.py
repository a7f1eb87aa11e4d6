"""The access file and the authorization decision, without a server."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from phimask.access import (
    METHOD_ROLES,
    REIDENTIFY,
    SHIP,
    Authorizer,
    Caller,
    current_caller,
    hash_token,
    load_access_file,
)
from phimask.config import SettingsError
from phimask.errors import CallError
from phimask.receivers import guarded, native_handler, otlp_handler, vector_handler
from phimask.reidentify import Reidentifier
from phimask.reidentify_service import reidentify_handler
from phimask.telemetry.observe import Observer
from phimask.workers import BatchRunner

SHIP_TOKEN = "s3cret-shipper-token-0001"
ANALYST_TOKEN = "s3cret-analyst-token-0002"
TRANSFORM = "/phimask.v1.BatchTransform/Transform"
DETOKENIZE = "/phimask.v1.Reidentify/Detokenize"


@dataclass
class FakeContext:
    """What authorization reads of a grpc ServicerContext."""

    auth: dict[str, list[bytes]] = field(default_factory=dict)
    metadata: tuple[tuple[str, str], ...] = ()
    aborted: tuple[grpc.StatusCode, str] | None = None

    def auth_context(self) -> dict[str, list[bytes]]:
        return self.auth

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise RuntimeError("aborted")


def bearer(token: str) -> FakeContext:
    return FakeContext(metadata=(("authorization", f"Bearer {token}"),))


def certified(cn: str, *, dns: str | None = None, uri: str | None = None) -> FakeContext:
    auth = {"x509_common_name": [cn.encode()]}
    if dns:
        auth["peer_dns"] = [dns.encode()]
    if uri:
        auth["peer_uri"] = [uri.encode()]
    return FakeContext(auth=auth)


ACCESS = f"""\
callers:
  - name: fluent-bit
    certificate: fluent-bit.logging.svc
    roles: [ship]
  - name: spiffe-shipper
    certificate: spiffe://cluster/ns/logging/sa/vector
    roles: [ship]
  - name: shipper-token
    token_sha256: {hash_token(SHIP_TOKEN)}
    roles: [ship]
  - name: analyst-tool
    token_sha256: {hash_token(ANALYST_TOKEN).upper()}
    roles: [reidentify]
"""


@pytest.fixture
def authorizer(tmp_path: Path) -> Authorizer:
    path = tmp_path / "access.yaml"
    path.write_text(ACCESS)
    return Authorizer(load_access_file(path))


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [vars(r) for r in self.records if getattr(r, "audit", None) == name]


@pytest.fixture
def audited() -> Iterator[Records]:
    logger = logging.getLogger("phimask.audit")
    handler, level = Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def denied(authorizer: Authorizer, context: FakeContext, role: str = SHIP,
           method: str = TRANSFORM) -> str:
    with pytest.raises(CallError) as info:
        authorizer.check(context, role, method)
    return info.value.status


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(hash_token(SHIP_TOKEN)) == 64


def test_without_access_file_everyone_ships_and_nobody_reidentifies(audited: Records) -> None:
    authorizer = Authorizer(None)
    assert authorizer.check(FakeContext(), SHIP, TRANSFORM) == Caller(
        "anonymous", frozenset({SHIP}), "anonymous")
    # A token means nothing without an access file; a certificate names the caller.
    assert authorizer.check(bearer(SHIP_TOKEN), SHIP, TRANSFORM).via == "anonymous"
    caller = authorizer.check(certified("fb", dns="fluent-bit.logging.svc"), SHIP, TRANSFORM)
    assert (caller.name, caller.via) == ("fluent-bit.logging.svc", "certificate")
    assert denied(authorizer, FakeContext(), REIDENTIFY, DETOKENIZE) == "PERMISSION_DENIED"
    assert denied(authorizer, certified("fb"), "admin", "/phimask.v1.Admin/X") == (
        "PERMISSION_DENIED")
    (event, _) = audited.events("authz.denied")
    assert (event["caller"], event["method"], event["reason"]) == (
        "anonymous", DETOKENIZE, "missing_role")


@pytest.mark.parametrize(("context", "name", "via"), [
    (bearer(SHIP_TOKEN), "shipper-token", "token"),
    (FakeContext(metadata=(("authorization", f"bearer  {SHIP_TOKEN} "),)), "shipper-token",
     "token"),
    (certified("whatever", dns="fluent-bit.logging.svc"), "fluent-bit", "certificate"),
    (certified("fluent-bit.logging.svc"), "fluent-bit", "certificate"),  # by CN
    (certified("vector", uri="spiffe://cluster/ns/logging/sa/vector"), "spiffe-shipper",
     "certificate"),
])
def test_known_callers_with_the_role_pass(authorizer: Authorizer, context: FakeContext,
                                          name: str, via: str) -> None:
    caller = authorizer.check(context, SHIP, TRANSFORM)
    assert (caller.name, caller.via, caller.roles) == (name, via, frozenset({SHIP}))


@pytest.mark.parametrize(("context", "reason"), [
    (FakeContext(), "no_credentials"),
    (bearer("not-a-known-token"), "unknown_token"),
    (FakeContext(metadata=(("authorization", SHIP_TOKEN),)), "malformed_authorization"),
    (FakeContext(metadata=(("authorization", f"Basic {SHIP_TOKEN}"),)),
     "malformed_authorization"),
    (FakeContext(metadata=(("authorization", f"Bearer {SHIP_TOKEN}"),
                           ("authorization", f"Bearer {SHIP_TOKEN}"))), "malformed_authorization"),
    (certified("stranger.example"), "unknown_certificate"),
    # A failing token is not rescued by a good certificate.
    (FakeContext(auth={"peer_dns": [b"fluent-bit.logging.svc"]},
                 metadata=(("authorization", "Bearer wrong"),)), "unknown_token"),
])
def test_unknown_callers_are_unauthenticated_and_audited(
        authorizer: Authorizer, audited: Records, context: FakeContext, reason: str) -> None:
    assert denied(authorizer, context) == "UNAUTHENTICATED"
    (event,) = audited.events("authz.denied")
    assert (event["method"], event["reason"], event["peer"]) == (
        TRANSFORM, reason, "ipv4:127.0.0.1:50000")
    for record in audited.records:
        assert SHIP_TOKEN not in str(vars(record))


def test_a_caller_without_the_role_is_denied(authorizer: Authorizer, audited: Records) -> None:
    assert denied(authorizer, bearer(ANALYST_TOKEN)) == "PERMISSION_DENIED"
    assert denied(authorizer, bearer(SHIP_TOKEN), REIDENTIFY, DETOKENIZE) == "PERMISSION_DENIED"
    first, second = audited.events("authz.denied")
    assert (first["caller"], first["via"], first["reason"]) == (
        "analyst-tool", "token", "missing_role")
    assert (second["caller"], second["method"]) == ("shipper-token", DETOKENIZE)
    assert ANALYST_TOKEN not in str([vars(r) for r in audited.records])


def test_granted_reidentification_is_audited(authorizer: Authorizer, audited: Records) -> None:
    caller = authorizer.gate(DETOKENIZE)(bearer(ANALYST_TOKEN))
    assert caller.name == "analyst-tool"
    (event,) = audited.events("authz.allowed")
    assert (event["caller"], event["method"], event["role"]) == (
        "analyst-tool", DETOKENIZE, REIDENTIFY)
    authorizer.check(bearer(SHIP_TOKEN), SHIP, TRANSFORM)
    assert len(audited.events("authz.allowed")) == 1  # shipping is not audited per call


def test_open_methods_need_no_identity(authorizer: Authorizer) -> None:
    assert authorizer.gate("/vector.Vector/HealthCheck")(FakeContext()).name == "anonymous"
    with pytest.raises(KeyError):
        authorizer.gate("/phimask.v1.Unlisted/Method")


def test_every_served_method_has_a_role() -> None:
    # The handlers ask METHOD_ROLES for each method's gate as they are built.
    runner = cast(BatchRunner, None)
    authorizer = Authorizer(None)
    observer = Observer()
    native_handler(runner, authorizer, observer)
    otlp_handler(runner, None, 1.0, authorizer, observer)
    vector_handler(runner, None, 1.0, authorizer, observer)
    reidentify_handler(cast(Reidentifier, None), authorizer)
    assert set(METHOD_ROLES.values()) == {SHIP, REIDENTIFY, None}


def test_guarded_checks_first_and_binds_the_caller(authorizer: Authorizer) -> None:
    ran: list[str] = []

    async def handler(request: bytes, context: Any) -> bytes:
        caller = current_caller()
        assert caller is not None
        ran.append(caller.name)
        return b"ok"

    run = guarded(handler, authorizer.gate(TRANSFORM))
    assert asyncio.run(run(b"", cast(Any, bearer(SHIP_TOKEN)))) == b"ok"
    assert ran == ["shipper-token"]
    context = FakeContext()
    with pytest.raises(RuntimeError, match="aborted"):
        asyncio.run(run(b"", cast(Any, context)))
    assert ran == ["shipper-token"]  # the handler never ran
    assert context.aborted is not None
    assert context.aborted[0] == grpc.StatusCode.UNAUTHENTICATED
    assert current_caller() is None


VALID_HASH = "ab" * 32


@pytest.mark.parametrize(("text", "message"), [
    ("callers: [\n", "line 2: not valid YAML"),
    ("- name: x\n", "must be a mapping with the key 'callers'"),
    ("callers: []\n", "'callers' must be a non-empty list"),
    ("caller: []\n", "unknown key 'caller'"),
    ("callers:\n  - just-a-name\n", r"callers\[0\]: must be a mapping"),
    ("callers:\n  - {name: a, certificate: a.svc, roles: [ship], tokn: x}\n",
     r"callers\[0\]: unknown key 'tokn'"),
    ("callers:\n  - {certificate: a.svc, roles: [ship]}\n", r"callers\[0\]\.name: must be"),
    ("callers:\n  - {name: yes, certificate: a.svc, roles: [ship]}\n", r"callers\[0\]\.name"),
    ("callers:\n  - {name: a, roles: [ship]}\n",
     r"callers\[0\]: needs 'certificate' or 'token_sha256'"),
    ("callers:\n  - {name: a, certificate: a.svc, roles: [ship]}\n"
     "  - {name: b, certificate: b.svc, roles: [ship, shipp]}\n",
     r"callers\[1\]\.roles: unknown role 'shipp'"),
    ("callers:\n  - {name: a, certificate: a.svc, roles: []}\n",
     r"callers\[0\]\.roles: must be a non-empty list"),
    ("callers:\n  - {name: a, certificate: a.svc, roles: ship}\n", r"callers\[0\]\.roles"),
    ("callers:\n  - {name: a, certificate: a.svc, roles: [[ship]]}\n",
     r"callers\[0\]\.roles: unknown role a value"),
    (f"callers:\n  - {{name: a, token_sha256: {SHIP_TOKEN}, roles: [ship]}}\n",
     r"callers\[0\]\.token_sha256: must be 64 hex digits"),
    (f"callers:\n  - {{name: a, token_sha256: {VALID_HASH}0, roles: [ship]}}\n",
     r"callers\[0\]\.token_sha256: must be 64 hex digits"),
    ("callers:\n  - {name: a, certificate: a.svc, roles: [ship]}\n"
     "  - {name: a, certificate: b.svc, roles: [ship]}\n",
     r"callers\[1\]\.name: the same as callers\[0\]\.name"),
    ("callers:\n  - {name: a, certificate: a.svc, roles: [ship]}\n"
     "  - {name: b, certificate: a.svc, roles: [admin]}\n",
     r"callers\[1\]\.certificate: the same as callers\[0\]"),
    (f"callers:\n  - {{name: a, token_sha256: {VALID_HASH}, roles: [ship]}}\n"
     f"  - {{name: b, token_sha256: '{VALID_HASH.upper()}', roles: [admin]}}\n",
     r"callers\[1\]\.token_sha256: the same as callers\[0\]"),
])
def test_access_file_errors_name_file_entry_and_key(tmp_path: Path, text: str,
                                                    message: str) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=message) as info:
        load_access_file(path)
    assert str(info.value).startswith(f"access file {path}")
    assert SHIP_TOKEN not in str(info.value)
    assert VALID_HASH not in str(info.value).lower()


def test_unreadable_access_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read it"):
        load_access_file(tmp_path / "missing.yaml")


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "access.yaml"
    path.write_text(ACCESS)
    policy = load_access_file(path)
    assert [e.name for e in policy.callers] == [
        "fluent-bit", "spiffe-shipper", "shipper-token", "analyst-tool"]
    assert policy.callers[3].roles == frozenset({REIDENTIFY})
