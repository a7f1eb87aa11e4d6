"""TLS on the listener and towards downstreams: startup checks, mTLS, certificate reload."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc

from phimask._gen.vector import vector_pb2 as vec
from phimask.config import Settings, SettingsError
from phimask.tls import (
    ListenerCertificates,
    forward_credentials,
    is_loopback,
    listener_certificates,
)
from tests.certs import CA, Issued
from tests.server.harness import phimask_server, request
from tests.server.sinks import Sink, otlp_sink, sink_server
from tests.server.test_otlp_forward import EXPORT, fluent_bit_request, received_records
from tests.server.test_vector_forward import PUSH, log_event

WRONG_CA = grpc.StatusCode.UNAVAILABLE  # a failed handshake never reaches a handler


@dataclass
class Pki:
    dir: Path
    ca: CA
    other: CA
    ca_file: Path
    cert: Path
    key: Path

    def trust(self, ca: CA | None = None, client: Issued | None = None
              ) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            (ca or self.ca).pem, client.key_pem if client else None,
            client.cert_pem if client else None)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, other = CA("phimask test CA"), CA("unrelated CA")
    cert, key = ca.server().write(tmp_path, "server")
    return Pki(tmp_path, ca, other, ca.write(tmp_path / "ca.crt"), cert, key)


def transform_ok(channel: grpc.Channel) -> None:
    reply = channel.unary_unary("/phimask.v1.BatchTransform/Transform")(
        request(b'{"ssn": "123-45-6789"}').SerializeToString(), timeout=10)
    assert b"123-45-6789" not in reply


def code_of(channel: grpc.Channel, method: str = "/phimask.v1.BatchTransform/Transform",
            data: bytes | None = None, timeout: float = 5) -> grpc.StatusCode:
    payload = request(b"{}").SerializeToString() if data is None else data
    try:
        channel.unary_unary(method)(payload, timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# -- startup checks, in process --------------------------------------------------------

def settings(pki: Pki | None = None, **values: object) -> Settings:
    base: dict[str, object] = {"listen": "127.0.0.1:0"}
    if pki is not None:
        base.update(tls_cert_file=pki.cert, tls_key_file=pki.key)
    return Settings(**{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("[::]", False), ("10.0.0.5", False), ("phimask.svc", False),
])
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plaintext_only_on_loopback_unless_allowed(caplog: pytest.LogCaptureFixture) -> None:
    assert listener_certificates(settings()) is None
    with pytest.raises(SettingsError, match="--allow-plaintext") as info:
        listener_certificates(settings(listen="0.0.0.0:4317"))
    assert "0.0.0.0:4317" in str(info.value) and "--tls-cert-file" in str(info.value)
    logger = logging.getLogger("phimask")
    propagate, logger.propagate = logger.propagate, True
    try:
        with caplog.at_level(logging.WARNING, "phimask.tls"):
            assert listener_certificates(settings(listen="0.0.0.0:4317",
                                                  allow_plaintext=True)) is None
    finally:
        logger.propagate = propagate
    assert "without TLS" in caplog.text


def test_half_configured_tls_names_the_missing_setting(pki: Pki) -> None:
    with pytest.raises(SettingsError, match=r"--tls-key-file \(PHIMASK_TLS_KEY_FILE\) is not set"):
        listener_certificates(settings(tls_cert_file=pki.cert))
    with pytest.raises(SettingsError, match=r"--tls-cert-file .* is not set"):
        listener_certificates(settings(tls_key_file=pki.key))
    with pytest.raises(SettingsError, match=r"--tls-client-ca-file .* needs --tls-cert-file"):
        listener_certificates(settings(tls_client_ca_file=pki.ca_file))
    with pytest.raises(SettingsError, match=r"--forward-key-file .* is not set"):
        forward_credentials(settings(forward_cert_file=pki.cert))


def test_bad_files_are_named_and_keys_never_shown(pki: Pki) -> None:
    secret = "c2VjcmV0IGtleSBtYXRlcmlhbA"
    bad_key = pki.dir / "bad.key"
    bad_key.write_text(f"-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n")
    not_a_cert = pki.dir / "bad.crt"
    not_a_cert.write_text("hello\n")
    encrypted = pki.dir / "enc.key"
    encrypted.write_bytes(pki.ca.server().key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")))
    _, other_key = pki.other.server().write(pki.dir, "other")
    cases = [
        (settings(pki, tls_key_file=bad_key), f"--tls-key-file .* {bad_key}: not a PEM private"),
        (settings(pki, tls_key_file=encrypted), "encrypted"),
        (settings(pki, tls_key_file=other_key), "does not belong to the certificate"),
        (settings(pki, tls_cert_file=not_a_cert), f"{not_a_cert}: no PEM certificate"),
        (settings(pki, tls_cert_file=pki.dir / "gone.crt"), "gone.crt: cannot read it"),
        (settings(pki, tls_client_ca_file=not_a_cert), "--tls-client-ca-file"),
        (settings(forward_ca_file=not_a_cert), "--forward-ca-file"),
    ]
    for bad, message in cases:
        with pytest.raises(SettingsError, match=message) as info:
            if bad.forward_ca_file is not None:
                forward_credentials(bad)
            else:
                listener_certificates(bad)
        assert secret not in str(info.value)
    assert listener_certificates(settings(pki, tls_client_ca_file=pki.ca_file)) is not None


def test_reload_waits_for_a_matching_pair(pki: Pki) -> None:
    tls = ListenerCertificates(pki.cert, pki.key, pki.ca_file)
    assert tls.mutual and tls.fetch() is None  # unchanged
    renewed = pki.ca.server()
    pki.cert.write_bytes(renewed.cert_pem)  # mid-rotation: the old key no longer matches
    assert tls.fetch() is None
    assert tls.fetch() is None  # the same half-written state is not retried
    pki.key.unlink()  # an atomic swap half done
    assert tls.fetch() is None
    pki.key.write_bytes(renewed.key_pem)
    assert tls.fetch() is not None
    assert tls.fetch() is None
    pki.other.write(pki.ca_file)  # a new client CA alone is a change too
    assert tls.fetch() is not None


# -- real servers ------------------------------------------------------------------------

def test_tls_listener(pki: Pki) -> None:
    with phimask_server(pki.dir / "state", "--workers", "0", "--tls-cert-file", str(pki.cert),
                        "--tls-key-file", str(pki.key), credentials=pki.trust()) as server:
        with server.channel() as channel:
            transform_ok(channel)
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == (
                health_pb2.HealthCheckResponse.SERVING)
        with grpc.insecure_channel(server.address) as plain:
            assert code_of(plain) == grpc.StatusCode.UNAVAILABLE
        with server.channel(pki.trust(pki.other)) as untrusted:
            assert code_of(untrusted) == WRONG_CA
        serving = next(json.loads(line) for line in server.log_lines if '"serving"' in line)
        assert serving["tls"] == "on"


def test_renewed_certificate_reaches_new_connections(pki: Pki) -> None:
    with phimask_server(pki.dir / "state", "--workers", "0", "--tls-cert-file", str(pki.cert),
                        "--tls-key-file", str(pki.key), credentials=pki.trust()) as server:
        with server.channel() as established:
            transform_ok(established)
            old_serial = pki.ca.server().cert.serial_number
            renewed = pki.other.server()  # issued by a new CA, as after a CA rotation
            assert renewed.cert.serial_number != old_serial
            renewed.write(pki.dir, "server")
            with server.channel(pki.trust(pki.other)) as fresh:
                transform_ok(fresh)
            with server.channel() as stale:
                assert code_of(stale) == WRONG_CA
            transform_ok(established)  # an open connection keeps its session
        assert any("TLS certificate reloaded" in line for line in server.log_lines)


def test_mutual_tls_with_access_file(pki: Pki) -> None:
    access = pki.dir / "access.yaml"
    access.write_text("callers:\n"
                      "  - {name: fluent-bit, certificate: fluent-bit.logging.svc, roles: [ship]}\n"
                      "  - {name: auditor, certificate: auditor.svc, roles: [reidentify]}\n")
    shipper = pki.ca.issue("fluent-bit", dns=("fluent-bit.logging.svc",))
    auditor = pki.ca.issue("auditor.svc")  # named by its CN
    stranger = pki.ca.issue("stranger", dns=("stranger.svc",))
    impostor = pki.other.issue("fluent-bit", dns=("fluent-bit.logging.svc",))
    with phimask_server(pki.dir / "state", "--workers", "0", "--tls-cert-file", str(pki.cert),
                        "--tls-key-file", str(pki.key), "--tls-client-ca-file", str(pki.ca_file),
                        "--access-file", str(access)) as server:
        with server.channel(pki.trust()) as anonymous:
            assert code_of(anonymous) == WRONG_CA  # no client certificate: no handshake
        with server.channel(pki.trust(client=impostor)) as channel:
            assert code_of(channel) == WRONG_CA
        with server.channel(pki.trust(client=auditor)) as channel:
            assert code_of(channel) == grpc.StatusCode.PERMISSION_DENIED
        with server.channel(pki.trust(client=stranger)) as channel:
            assert code_of(channel) == grpc.StatusCode.UNAUTHENTICATED
        with server.channel(pki.trust(client=shipper)) as channel:
            transform_ok(channel)
            replies = list(channel.stream_stream("/phimask.v1.BatchTransform/TransformStream")(
                iter([request(b"{}").SerializeToString()] * 3), timeout=10))
            assert len(replies) == 3
        denied = server.audit_events("authz.denied")
        assert [(e["caller"], e["reason"]) for e in denied] == [
            ("auditor", "missing_role"), ("stranger.svc", "unknown_certificate")]
        assert all(e["method"] == "/phimask.v1.BatchTransform/Transform" for e in denied)


def test_plaintext_off_loopback_is_refused_unless_allowed(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "phimask", "serve", "--listen", "0.0.0.0:0", "--workers", "0",
           "--state-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PHIMASK_ALLOW_PLAINTEXT": ""})
    assert done.returncode == 1
    assert done.stderr.startswith("phimask: error: refusing to serve without TLS on 0.0.0.0:0")
    assert not (tmp_path / "keys").exists()  # refused before anything was set up
    assert "--allow-plaintext" in done.stderr
    with phimask_server(tmp_path, "--listen", "0.0.0.0:0", "--workers", "0",
                        "--allow-plaintext", "true") as server:
        port = server.address.rpartition(":")[2]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            transform_ok(channel)
        assert any("without TLS" in line and '"warning"' in line for line in server.log_lines)


def test_a_bad_key_file_stops_serve_without_showing_it(pki: Pki) -> None:
    pki.key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    done = subprocess.run(
        [sys.executable, "-m", "phimask", "serve", "--workers", "0", "--state-dir",
         str(pki.dir / "state"), "--tls-cert-file", str(pki.cert), "--tls-key-file",
         str(pki.key)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == (f"phimask: error: --tls-key-file (PHIMASK_TLS_KEY_FILE) {pki.key}: "
                           "not a PEM private key\n")


def test_forward_over_tls(pki: Pki) -> None:
    """OTLP to an https:// downstream that verifies phimask's client certificate; Vector
    to one whose certificate no trusted CA signed, which must not get the batch."""
    sink_cert = pki.ca.server()
    client_cert, client_key = pki.ca.issue("phimask-forwarder").write(pki.dir, "forwarder")
    untrusted = pki.other.server()
    with otlp_sink(tls=(sink_cert.key_pem, sink_cert.cert_pem), client_ca=pki.ca.pem) as sink, \
            sink_server("vector.Vector", "PushEvents", Sink(),
                        tls=(untrusted.key_pem, untrusted.cert_pem)) as rogue, \
            phimask_server(pki.dir / "state", "--workers", "0",
                           "--otlp-downstream", sink.url, "--vector-downstream", rogue.url,
                           "--forward-ca-file", str(pki.ca_file),
                           "--forward-cert-file", str(client_cert),
                           "--forward-key-file", str(client_key)) as server, \
            server.channel() as channel:
        assert sink.url.startswith("https://")
        channel.unary_unary(EXPORT)(fluent_bit_request(2).SerializeToString(), timeout=10)
        assert len(received_records(sink)) == 2
        assert sink.peers[0]["x509_common_name"] == [b"phimask-forwarder"]
        push = vec.PushEventsRequest(events=[log_event(0)]).SerializeToString()
        assert code_of(channel, PUSH, push, timeout=1.0) == grpc.StatusCode.UNAVAILABLE
        assert rogue.calls == 0
