"""Bearer tokens and roles against a real server (TLS, an access file)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from phimask._gen.vector import vector_pb2 as vec
from phimask.access import hash_token
from tests.certs import CA
from tests.server.harness import RunningServer, phimask_server, request
from tests.server.test_otlp_forward import EXPORT, fluent_bit_request
from tests.server.test_vector_forward import PUSH

SHIP_TOKEN = "ship-7f3a9c2e4b1d8e6f"
ANALYST_TOKEN = "analyst-0c5d2e9a7b3f1e4d"
TRANSFORM = "/phimask.v1.BatchTransform/Transform"
STREAM = "/phimask.v1.BatchTransform/TransformStream"
HEALTH_CHECK = "/vector.Vector/HealthCheck"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("access")
    ca = CA()
    cert, key = ca.server().write(tmp, "server")
    access = tmp / "access.yaml"
    access.write_text(f"callers:\n"
                      f"  - name: shipper\n    token_sha256: {hash_token(SHIP_TOKEN)}\n"
                      f"    roles: [ship]\n"
                      f"  - name: analyst-tool\n    token_sha256: {hash_token(ANALYST_TOKEN)}\n"
                      f"    roles: [reidentify]\n")
    with phimask_server(tmp / "state", "--workers", "0", "--tls-cert-file", str(cert),
                        "--tls-key-file", str(key), "--access-file", str(access),
                        credentials=grpc.ssl_channel_credentials(ca.pem)) as running:
        yield running


def auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def code(server: RunningServer, method: str, payload: bytes,
         metadata: tuple[tuple[str, str], ...] = ()) -> grpc.StatusCode:
    with server.channel() as channel:
        try:
            channel.unary_unary(method)(payload, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


NATIVE = request(b'{"ssn": "123-45-6789"}').SerializeToString()
OTLP = fluent_bit_request(1).SerializeToString()
VECTOR = vec.PushEventsRequest().SerializeToString()


@pytest.mark.parametrize(("method", "payload"), [(TRANSFORM, NATIVE), (EXPORT, OTLP),
                                                 (PUSH, VECTOR)], ids=["native", "otlp", "vector"])
@pytest.mark.parametrize(("metadata", "expected"), [
    ((), grpc.StatusCode.UNAUTHENTICATED),
    (auth("not-" + SHIP_TOKEN), grpc.StatusCode.UNAUTHENTICATED),
    ((("authorization", SHIP_TOKEN),), grpc.StatusCode.UNAUTHENTICATED),
    (auth(ANALYST_TOKEN), grpc.StatusCode.PERMISSION_DENIED),
], ids=["missing", "wrong", "malformed", "wrong-role"])
def test_ship_methods_need_a_known_token_with_the_role(
        server: RunningServer, method: str, payload: bytes,
        metadata: tuple[tuple[str, str], ...], expected: grpc.StatusCode) -> None:
    assert code(server, method, payload, metadata) == expected


def test_the_right_token_ships(server: RunningServer) -> None:
    assert code(server, TRANSFORM, NATIVE, auth(SHIP_TOKEN)) == grpc.StatusCode.OK
    # Past authorization: OTLP and Vector then fail for want of a downstream.
    assert code(server, EXPORT, OTLP, auth(SHIP_TOKEN)) == grpc.StatusCode.UNAVAILABLE
    assert code(server, PUSH, VECTOR, auth(SHIP_TOKEN)) == grpc.StatusCode.UNAVAILABLE


def test_streams_are_checked_before_any_request_is_read(server: RunningServer) -> None:
    with server.channel() as channel:
        stream = channel.stream_stream(STREAM)
        replies = list(stream(iter([NATIVE] * 3), metadata=auth(SHIP_TOKEN), timeout=10))
        assert len(replies) == 3
        for metadata, expected in ((auth(ANALYST_TOKEN), grpc.StatusCode.PERMISSION_DENIED),
                                   ((), grpc.StatusCode.UNAUTHENTICATED)):
            with pytest.raises(grpc.RpcError) as info:
                list(stream(iter([NATIVE] * 3), metadata=metadata, timeout=10))
            assert info.value.code() == expected


def test_probes_and_discovery_stay_open(server: RunningServer) -> None:
    healthy = vec.HealthCheckResponse(status=vec.SERVING).SerializeToString()
    with server.channel() as channel:
        assert channel.unary_unary(HEALTH_CHECK)(b"", timeout=5) == healthy
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        answers = list(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
        assert answers[0].list_services_response.service


def test_denials_are_audited_without_tokens(server: RunningServer) -> None:
    before = len(server.audit_events("authz.denied"))
    code(server, TRANSFORM, NATIVE)
    code(server, TRANSFORM, NATIVE, auth("wrong-" + ANALYST_TOKEN))
    code(server, TRANSFORM, NATIVE, (("authorization", ANALYST_TOKEN),))
    code(server, EXPORT, OTLP, auth(ANALYST_TOKEN))
    denied = server.audit_events("authz.denied")[before:]
    assert [(e["caller"], e["method"], e["reason"]) for e in denied] == [
        ("anonymous", TRANSFORM, "no_credentials"),
        ("unknown", TRANSFORM, "unknown_token"),
        ("unknown", TRANSFORM, "malformed_authorization"),
        ("analyst-tool", EXPORT, "missing_role"),
    ]
    assert denied[-1]["via"] == "token"
    assert all(str(e["peer"]).startswith("ipv4:127.0.0.1:") for e in denied)
    logs = server.logs()
    for token in (SHIP_TOKEN, ANALYST_TOKEN):
        assert token not in logs


def test_a_token_caller_without_tls_on_loopback_warns(tmp_path: Path) -> None:
    access = tmp_path / "access.yaml"
    access.write_text(f"callers:\n  - {{name: s, token_sha256: {hash_token(SHIP_TOKEN)}, "
                      "roles: [ship]}\n")
    with phimask_server(tmp_path / "state", "--workers", "0", "--access-file",
                        str(access)) as server:
        assert code(server, TRANSFORM, NATIVE, auth(SHIP_TOKEN)) == grpc.StatusCode.OK
        assert code(server, TRANSFORM, NATIVE) == grpc.StatusCode.UNAUTHENTICATED
        assert any("bearer tokens are accepted on a listener without TLS" in line
                   for line in server.log_lines)
