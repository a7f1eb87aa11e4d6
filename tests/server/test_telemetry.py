"""What phimask shows a tracing backend: a real OTLP TraceService in the test receives
one span per batch, linked to the caller's trace, with rule counts and never a value;
audit events become spans and a hash-chained log that verifies."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.trace.v1 import trace_pb2

from phimask._gen.phimask.v1 import transform_pb2 as pb
from tests.cli.test_cli import PHI_LINES, PHI_VALUES
from tests.server.harness import phimask_server
from tests.server.sinks import Sink, sink_server

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def spans_of(sink: Sink) -> list[trace_pb2.Span]:
    spans = []
    for raw in sink.received:
        for rs in trace_pb.ExportTraceServiceRequest.FromString(raw).resource_spans:
            for ss in rs.scope_spans:
                spans.extend(ss.spans)
    return spans


def attrs(span: trace_pb2.Span) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


@pytest.fixture
def trace_sink() -> Sink:
    with sink_server("opentelemetry.proto.collector.trace.v1.TraceService", "Export",
                     Sink(reply=trace_pb.ExportTraceServiceResponse().SerializeToString())
                     ) as sink:
        yield sink


def test_one_span_per_batch_linked_to_the_caller_with_rule_counts_and_no_phi(
        tmp_path: Path, trace_sink: Sink) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": trace_sink.url, "OTEL_SERVICE_NAME": "phimask-test",
           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
           "K8S_POD_NAME": "agent-x1", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nfields:\n  - {path: patient.ssn, action: redact}\n"
                      "  - {path: patient.mrn, action: hmac}\n")
    token = "analyst-token-9"
    access = tmp_path / "access.yaml"
    access.write_text("callers:\n  - {name: shipper, token_sha256: "
                      f"{hashlib.sha256(b'ship-token').hexdigest()}, roles: [ship]}}\n"
                      f"  - {{name: analyst, token_sha256: "
                      f"{hashlib.sha256(token.encode()).hexdigest()}, roles: [reidentify]}}\n")
    state = tmp_path / "state"
    request = pb.TransformRequest(records=[pb.Record(payload=orjson.dumps(line))
                                           for line in PHI_LINES])
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    with phimask_server(state, "--policy", str(policy), "--access-file", str(access),
                        "--workers", "1", env=env) as server, server.channel() as channel:
        call = channel.unary_unary("/phimask.v1.BatchTransform/Transform",
                                   request_serializer=pb.TransformRequest.SerializeToString,
                                   response_deserializer=pb.TransformResponse.FromString)
        reply = call(request, metadata=(("traceparent", traceparent),
                                        ("authorization", "Bearer ship-token")), timeout=30)
        assert len(reply.records) == 2
        with pytest.raises(grpc.RpcError):  # a denial: audited, and an audit span
            call(request, metadata=(("authorization", f"Bearer {token}"),), timeout=30)

    spans = spans_of(trace_sink)
    (batch,) = [s for s in spans if s.name == "phimask.transform"]
    assert batch.trace_id.hex() == TRACE_ID and batch.parent_span_id.hex() == PARENT_ID
    a = attrs(batch)
    assert a["phimask.records.in"] == 2 and a["phimask.records.out"] == 2
    assert a["phimask.records.rejected"] == 0 and a["phimask.caller.name"] == "shipper"
    assert str(a["phimask.policy.version"]).startswith("sha256:")
    rules = {attrs_of(e)["phimask.rule.id"]: attrs_of(e) for e in batch.events
             if e.name == "phimask.rule"}
    assert rules["patient.ssn"]["phimask.rule.count"] == 1
    assert rules["patient.mrn"]["phimask.rule.action"] == "hmac"
    detectors = {attrs_of(e)["phimask.detector.name"] for e in batch.events
                 if e.name == "phimask.detector"}
    assert {"ssn", "email", "phone"} <= detectors
    denied = [s for s in spans if s.name == "phimask.audit.authz.denied"]
    assert denied and attrs(denied[0])["phimask.audit.caller"] == "analyst"
    resource = {kv.key: kv.value.string_value for raw in trace_sink.received
                for rs in trace_pb.ExportTraceServiceRequest.FromString(raw).resource_spans
                for kv in rs.resource.attributes}
    assert resource["service.name"] == "phimask-test"
    assert resource["k8s.pod.name"] == "agent-x1"
    assert resource["deployment.environment"] == "test"
    everything = b"".join(trace_sink.received)
    for value in [*PHI_VALUES, token, "ship-token"]:
        assert value.encode() not in everything, value

    # The same denial is in the hash-chained audit log, which verifies until edited.
    log = state / "audit" / "audit.jsonl"
    lines = log.read_bytes().splitlines()
    assert any(b'"authz.denied"' in line for line in lines)

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "phimask", "audit", "verify", str(log),
                               "--state-dir", str(state)], capture_output=True, text=True,
                              timeout=60, check=False)

    intact = verify()
    assert intact.returncode == 0 and "chain intact" in intact.stdout
    at = next(i for i, line in enumerate(lines) if b'"authz.denied"' in line)
    lines[at] = lines[at].replace(b'"analyst"', b'"someone"')  # hide who was refused
    log.write_bytes(b"\n".join(lines) + b"\n")
    tampered = verify()
    assert tampered.returncode == 1
    assert f"{log} line {at + 1}: bad_mac" in tampered.stdout + tampered.stderr


def attrs_of(event: trace_pb2.Span.Event) -> dict[str, object]:
    out: dict[str, object] = {}
    for kv in event.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def test_a_policy_gap_raises_the_residual_metric_and_log_within_one_batch(
        tmp_path: Path) -> None:
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = tmp_path / "gap.yaml"
    policy.write_text("version: 1\nprofile: none\nunmapped_strings: keep\n"
                      "fields:\n  - {path: patient.mrn, action: hmac}\n")
    request = pb.TransformRequest(records=[pb.Record(payload=orjson.dumps(
        {"patient": {"ssn": "123-45-6789", "mrn": "MRN-00123456"}}))])
    with phimask_server(tmp_path / "s", "--policy", str(policy), "--workers", "1",
                        "--monitor-sample-rate", "1", "--metrics-listen",
                        f"127.0.0.1:{port}") as server, server.channel() as channel:
        for _ in range(2):
            channel.unary_unary("/phimask.v1.BatchTransform/Transform")(
                request.SerializeToString(), timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            metrics = page.read().decode()
    residual = [line for line in metrics.splitlines()
                if line.startswith("phimask_residual_phi_total{")]
    assert residual, metrics[:2000]
    assert 'detector="ssn"' in residual[0] and 'path="payload.patient.ssn"' in residual[0]
    assert residual[0].rstrip().endswith(" 2.0")
    drift = [line for line in metrics.splitlines()
             if line.startswith("phimask_unmapped_values_total{")]
    assert any('path="payload.patient.ssn"' in line and 'phi="likely"' in line
               for line in drift), drift
    new_path = [line for line in server.log_lines if "a path no rule names appeared" in line]
    assert len(new_path) == 1 and "payload.patient.ssn" in new_path[0]  # once, not per batch
    assert 'phimask_records_total{' in metrics
    warnings = [line for line in server.log_lines if "residual PHI" in line]
    assert warnings and '"path": "payload.patient.ssn"' in warnings[0].replace('":"', '": "')
    assert server.audit_events("residual_phi")
    assert "123-45-6789" not in server.logs() and "123-45-6789" not in metrics
