"""Issue 4 end to end, on real servers: signatures over gRPC, one token per value across
processes sharing PostgreSQL, authorized re-identification (and its audit), the vault
going away, and the quarantine."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as otlp_pb
from opentelemetry.proto.logs.v1 import logs_pb2
from psycopg.conninfo import conninfo_to_dict

from phimask._gen.phimask.v1 import reidentify_pb2 as rpb
from phimask._gen.phimask.v1 import transform_pb2 as pb
from phimask.keyring import create_key_file
from tests.server.harness import RunningServer, phimask_server
from tests.server.sinks import otlp_sink
from tests.server.test_otlp_forward import kv
from tests.vault.conftest import pg_dsn, pg_new_url  # noqa: F401 (fixtures)
from tests.vault.helpers import TcpProxy

DETOKENIZE = "/phimask.v1.Reidentify/Detokenize"
EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
ANALYST, SHIPPER = "analyst-secret-token-1", "shipper-secret-token-2"
NAMES = [f"Patient Number{i}" for i in range(20)]
PHONES = [f"617-555-{i:04d}" for i in range(20)]
POLICY = """\
version: 1
profile: none
on_error: quarantine
fields:
  - {path: patient.name, action: tokenize}
  - {path: patient.phone, action: fpe}
"""


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    for purpose in ("hmac", "fpe", "vault", "vault-index", "verify-hmac", "audit"):
        create_key_file(directory, purpose, kid="k1")
    return directory


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def access(tmp_path: Path) -> Path:
    path = tmp_path / "access.yaml"
    path.write_text(
        "callers:\n"
        f"  - {{name: analyst, token_sha256: {hashlib.sha256(ANALYST.encode()).hexdigest()}, "
        "roles: [reidentify]}\n"
        f"  - {{name: shipper, token_sha256: {hashlib.sha256(SHIPPER.encode()).hexdigest()}, "
        "roles: [ship]}\n")
    return path


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def transform(server: RunningServer, request: pb.TransformRequest,
              metadata: tuple[tuple[str, str], ...] = bearer(SHIPPER)) -> pb.TransformResponse:
    with server.channel() as channel:
        call = channel.unary_unary("/phimask.v1.BatchTransform/Transform",
                                   request_serializer=pb.TransformRequest.SerializeToString,
                                   response_deserializer=pb.TransformResponse.FromString)
        reply: pb.TransformResponse = call(request, metadata=metadata, timeout=30)
        return reply


def detokenize(server: RunningServer, values: list[tuple[str, str]], token: str,
               purpose: str = "INC-4411, caller at 617-555-0142") -> rpb.DetokenizeResponse:
    with server.channel() as channel:
        call = channel.unary_unary(DETOKENIZE,
                                   request_serializer=rpb.DetokenizeRequest.SerializeToString,
                                   response_deserializer=rpb.DetokenizeResponse.FromString)
        reply: rpb.DetokenizeResponse = call(rpb.DetokenizeRequest(purpose=purpose, values=[
            rpb.MaskedValue(value=v, field=f) for v, f in values]), metadata=bearer(token),
            timeout=30)
        return reply


def patients() -> pb.TransformRequest:
    return pb.TransformRequest(records=[
        pb.Record(payload=orjson.dumps({"patient": {"name": n, "phone": p}}), id=f"r{i}")
        for i, (n, p) in enumerate(zip(NAMES, PHONES, strict=True))])


def masked_patients(reply: pb.TransformResponse) -> list[dict[str, str]]:
    assert not reply.rejections, reply.rejections
    return [orjson.loads(r.payload)["patient"] for r in reply.records]


def test_two_processes_agree_on_tokens_and_only_an_analyst_gets_originals(
        tmp_path: Path, keys_dir: Path, policy: Path, access: Path,
        pg_new_url: object) -> None:  # noqa: F811
    assert callable(pg_new_url)
    vault_url = pg_new_url()
    args = ("--keys-dir", str(keys_dir), "--policy", str(policy), "--vault-url", vault_url,
            "--access-file", str(access), "--workers", "1")
    with phimask_server(tmp_path / "a", *args) as one, \
            phimask_server(tmp_path / "b", *args) as two:
        first = masked_patients(transform(one, patients()))
        second = masked_patients(transform(two, patients()))
        assert [p["name"] for p in first] == [p["name"] for p in second]
        assert all(p["name"].startswith("tok_k1_") for p in first)
        assert len({p["name"] for p in first}) == len(NAMES)
        assert [p["phone"] for p in first] == [p["phone"] for p in second]
        assert all(p["phone"] != phone and len(p["phone"]) == 12 for p, phone in
                   zip(first, PHONES, strict=True))

        asked = [(p["name"], "patient.name") for p in first[:3]] + [
            (first[3]["phone"], "patient.phone"), ("tok_k1_doesnotexist", "patient.name")]
        reply = detokenize(two, asked, ANALYST)
        assert [v.value for v in reply.values[:4]] == [*NAMES[:3], PHONES[3]]
        assert not reply.values[4].found and reply.values[4].error == "unknown_token"

        with pytest.raises(grpc.RpcError) as denied:
            detokenize(two, asked, SHIPPER)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as no_purpose:
            detokenize(two, asked, ANALYST, purpose=" ")
        assert no_purpose.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    (allowed,) = two.audit_events("reidentify")
    assert allowed["caller"] == "analyst" and allowed["count"] == 5
    # The purpose is kept, with what looks like PHI in it masked.
    assert allowed["found"] == 4 and allowed["purpose"] == "INC-4411, caller at [REDACTED:PHONE]"
    (refused,) = [e for e in two.audit_events("authz.denied") if e.get("caller") == "shipper"]
    assert refused["method"] == DETOKENIZE
    logs = one.logs() + two.logs()
    for secret in [*NAMES, *PHONES, ANALYST, SHIPPER, first[0]["name"], "617-555-0142"]:
        assert secret not in logs


def test_vault_outage_answers_unavailable_and_emits_nothing(
        tmp_path: Path, keys_dir: Path, policy: Path, pg_new_url: object) -> None:  # noqa: F811
    assert callable(pg_new_url)
    parts = conninfo_to_dict(pg_new_url())
    proxy = TcpProxy(str(parts["host"]), int(parts["port"]))
    options = str(parts.get("options", "")).replace(" ", "%20").replace("=", "%3D")
    url = (f"postgresql://{parts['user']}@127.0.0.1:{proxy.port}/{parts['dbname']}"
           f"?options={options}")
    with phimask_server(tmp_path / "s", "--keys-dir", str(keys_dir), "--policy", str(policy),
                        "--vault-url", url, "--workers", "1") as server:
        assert len(masked_patients(transform(server, patients(), ()))) == len(NAMES)
        proxy.stop()
        fresh = pb.TransformRequest(records=[pb.Record(payload=orjson.dumps(
            {"patient": {"name": "Someone New", "phone": "212-555-0188"}}))])
        with pytest.raises(grpc.RpcError) as info:
            transform(server, fresh, ())
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "vault unavailable" in (info.value.details() or "")
        assert "Someone New" not in (info.value.details() or "")
    assert "Someone New" not in server.logs()


def test_quarantine_keeps_the_original_encrypted_and_the_cli_reads_it(
        tmp_path: Path, keys_dir: Path, policy: Path) -> None:
    state = tmp_path / "state"
    short = {"patient": {"name": "Ann Short", "phone": "555-01"}}  # too short for FF1
    with phimask_server(state, "--keys-dir", str(keys_dir), "--policy", str(policy),
                        "--workers", "0") as server:
        reply = transform(server, pb.TransformRequest(records=[
            pb.Record(payload=orjson.dumps(short), id="bad"),
            pb.Record(payload=orjson.dumps({"patient": {"name": "Bo", "phone": PHONES[0]}}))]),
            ())
    (rejection,) = reply.rejections
    assert (rejection.index, rejection.reason, rejection.id) == (0, "operator_error", "bad")
    assert rejection.quarantine_id.startswith("q_")
    assert len(reply.records) == 1
    for path in state.glob("vault.db*"):
        assert b"Ann Short" not in path.read_bytes()

    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "phimask", "quarantine", *args,
                               "--keys-dir", str(keys_dir), "--state-dir", str(state)],
                              capture_output=True, timeout=60, check=False)

    listing = cli("list")
    assert listing.returncode == 0
    assert rejection.quarantine_id.encode() in listing.stdout
    assert b"operator_error" in listing.stdout and b"Ann Short" not in listing.stdout
    shown = cli("show", rejection.quarantine_id, "--reason", "INC-9")
    assert shown.returncode == 0
    assert orjson.loads(shown.stdout)["payload"] == short
    assert b'"audit": "quarantine.show"' in shown.stderr.replace(b'":"', b'": "')
    assert cli("purge", "--all").returncode == 0
    assert rejection.quarantine_id.encode() not in cli("list").stdout
    # Opening and purging are in the hash-chained trail, after the server's entries.
    trail = (state / "audit" / "audit.jsonl").read_bytes()
    assert b'"quarantine.show"' in trail and b'"quarantine.purge"' in trail
    assert b"Ann Short" not in trail
    verified = subprocess.run([sys.executable, "-m", "phimask", "audit", "verify",
                               str(state / "audit"), "--keys-dir", str(keys_dir)],
                              capture_output=True, text=True, timeout=60, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_signatures_over_grpc_native_and_otlp(tmp_path: Path, keys_dir: Path) -> None:
    key = bytes.fromhex((keys_dir / "verify-hmac.k1.key").read_text())
    policy = tmp_path / "signed.yaml"
    policy.write_text("version: 1\nintegrity: {mode: require}\n"
                      "fields:\n  - {path: patient.ssn, action: redact}\n")
    good = b'{"patient": {"ssn": "123-45-6789"}}'
    sig = hmac.digest(key, good, "sha256")
    request = pb.TransformRequest(records=[
        pb.Record(payload=good, signature=sig, key_id="k1", id="ok"),
        pb.Record(payload=good.replace(b"123", b"124"), signature=sig, key_id="k1",
                  id="tampered"),
        pb.Record(payload=good, id="unsigned")])
    with otlp_sink() as sink, phimask_server(
            tmp_path / "s", "--keys-dir", str(keys_dir), "--policy", str(policy),
            "--otlp-downstream", sink.url, "--workers", "0") as server:
        reply = transform(server, request, ())
        assert [r.id for r in reply.records] == ["ok"]
        assert [(r.id, r.reason, r.rule) for r in reply.rejections] == [
            ("tampered", "bad_signature", "integrity:mismatch"),
            ("unsigned", "bad_signature", "integrity:missing")]

        batch = pb.TransformRequest(records=[pb.Record(payload=good)]).SerializeToString()
        signature = base64.b64encode(hmac.digest(key, batch, "sha256")).decode()
        headers = (("x-phimask-batch-signature", signature), ("x-phimask-key-id", "k1"))
        assert len(transform(server, pb.TransformRequest.FromString(batch), headers).records) == 1

        export = otlp_pb.ExportLogsServiceRequest()
        export.resource_logs.add().scope_logs.add().log_records.append(
            logs_pb2.LogRecord(attributes=[kv("ssn", "123-45-6789")]))
        data = export.SerializeToString()
        signature = base64.b64encode(hmac.digest(key, data, "sha256")).decode()
        with server.channel() as channel:
            call = channel.unary_unary(EXPORT)
            accepted = otlp_pb.ExportLogsServiceResponse.FromString(call(data, metadata=(
                ("x-phimask-batch-signature", signature), ("x-phimask-key-id", "k1")),
                timeout=30))
            refused = otlp_pb.ExportLogsServiceResponse.FromString(call(data, metadata=(
                ("x-phimask-batch-signature", signature[::-1]), ("x-phimask-key-id", "k1")),
                timeout=30))
        assert not accepted.partial_success.rejected_log_records
        assert refused.partial_success.rejected_log_records == 1
        assert "bad_signature" in refused.partial_success.error_message
        assert len(sink.received) == 1  # the refused batch never went on
        assert b"123-45-6789" not in sink.received[0]
    failures = server.audit_events("integrity.failed")
    assert {(e["protocol"], e["count"]) for e in failures} == {("native", 2), ("otlp", 1)}
    assert "123-45-6789" not in server.logs()


def test_detokenize_cli_with_a_bearer_token_file(
        tmp_path: Path, keys_dir: Path, policy: Path, access: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(ANALYST + "\n")
    with phimask_server(tmp_path / "s", "--keys-dir", str(keys_dir), "--policy", str(policy),
                        "--access-file", str(access), "--workers", "0") as server:
        name = masked_patients(transform(server, patients()))[0]["name"]
        done = subprocess.run(
            [sys.executable, "-m", "phimask", "detokenize", "--purpose", "INC-1", "--target",
             server.address, "--field", "patient.name", "--bearer-token-file", str(token_file),
             name, "tok_k1_nope"],
            capture_output=True, timeout=60, check=False, env={**os.environ})
    assert done.returncode == 3, done.stderr
    lines = [orjson.loads(x) for x in done.stdout.splitlines()]
    assert lines[0] == {"masked": name, "original": NAMES[0], "error": None}
    assert lines[1]["original"] is None and lines[1]["error"] == "unknown_token"
