"""OTLP in, masked OTLP out: the OTel SDK's own exporter -> phimask -> a real
LogsService server in the test."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import grpc
import orjson
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as otlp_pb
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from tests.server.harness import phimask_server
from tests.server.harness import request as native_request
from tests.server.sinks import Sink, otlp_sink

EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PHI = ["123-45-6789", "ann.lee@example.org", "(617) 555-0142", "Ann Lee", "MRN-00123456"]


def received_records(sink: Sink) -> list[logs_pb2.LogRecord]:
    out = []
    for raw in sink.received:
        req = otlp_pb.ExportLogsServiceRequest.FromString(raw)
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                out.extend(sl.log_records)
    return out


def kv(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def fluent_bit_request(n: int) -> otlp_pb.ExportLogsServiceRequest:
    """As Fluent Bit's opentelemetry output sends it: the record as a kvlist body."""
    records = []
    for i in range(n):
        body = common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[
            kv("msg", f"visit {i}: call (617) 555-0142"),
            common_pb2.KeyValue(key="patient", value=common_pb2.AnyValue(
                kvlist_value=common_pb2.KeyValueList(values=[
                    kv("ssn", "123-45-6789"), kv("name", "Ann Lee"), kv("mrn", "MRN-00123456")]))),
            common_pb2.KeyValue(key="status", value=common_pb2.AnyValue(int_value=200)),
        ]))
        records.append(logs_pb2.LogRecord(time_unix_nano=1_700_000_000_000_000_000 + i,
                                          severity_number=9, severity_text="INFO", body=body))
    return otlp_pb.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        scope_logs=[logs_pb2.ScopeLogs(log_records=records)])])


def test_sdk_exporter_through_phimask(tmp_path: Path) -> None:
    with otlp_sink() as sink, phimask_server(
        tmp_path, "--workers", "1", "--otlp-downstream", sink.url
    ) as server:
        provider = LoggerProvider()
        exporter = OTLPLogExporter(endpoint=server.address, insecure=True, timeout=20)
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        logger = provider.get_logger("phimask.test.sdk")
        for i in range(5):
            logger.emit(
                severity_number=SeverityNumber.INFO, severity_text="INFO",
                body=f"patient SSN 123-45-6789 reached at (617) 555-0142 visit {i}",
                attributes={"user.email": "ann.lee@example.org", "visit.count": i,
                            "patient_name": "Ann Lee"},
            )
        provider.shutdown()
        records = received_records(sink)
        assert len(records) == 5
        for i, record in enumerate(records):
            assert record.body.string_value == (
                f"patient SSN [REDACTED:SSN] reached at [REDACTED:PHONE] visit {i}")
            attrs = {a.key: a.value for a in record.attributes}
            assert attrs["user.email"].string_value == "[REDACTED:EMAIL]"
            assert attrs["patient_name"].string_value == "[REDACTED:NAME]"
            assert attrs["visit.count"].int_value == i  # an int stays an int
            assert record.severity_text == "INFO"
        blob = b"".join(sink.received)
        for value in PHI:
            assert value.encode() not in blob
            assert value not in server.logs()


def test_fluent_bit_shape_masks_like_native(tmp_path: Path) -> None:
    request = fluent_bit_request(3)
    with otlp_sink() as sink, phimask_server(
        tmp_path, "--workers", "0", "--otlp-downstream", sink.url
    ) as server, server.channel() as channel:
        reply = otlp_pb.ExportLogsServiceResponse.FromString(
            channel.unary_unary(EXPORT)(request.SerializeToString(), timeout=20))
        assert not reply.HasField("partial_success")
        native = server.stub(channel).Transform(native_request(orjson.dumps(
            {"msg": "visit 0: call (617) 555-0142",
             "patient": {"ssn": "123-45-6789", "name": "Ann Lee", "mrn": "MRN-00123456"},
             "status": 200})), timeout=20)
    records = received_records(sink)
    sent = request.resource_logs[0].scope_logs[0].log_records
    assert [r.time_unix_nano for r in records] == [r.time_unix_nano for r in sent]
    body = {kv.key: kv.value for kv in records[0].body.kvlist_value.values}
    patient = {kv.key: kv.value.string_value for kv in body["patient"].kvlist_value.values}
    expected = orjson.loads(native.records[0].payload)
    assert patient == expected["patient"]
    assert body["msg"].string_value == expected["msg"]
    assert body["status"].int_value == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_downstream_outage_then_recovery_loses_nothing(tmp_path: Path) -> None:
    port = _free_port()
    request = fluent_bit_request(10).SerializeToString()
    with phimask_server(tmp_path, "--workers", "0", "--otlp-downstream",
                        f"http://127.0.0.1:{port}") as server, server.channel() as channel:
        export = channel.unary_unary(EXPORT)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            export(request, timeout=2)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 2.5  # within the caller's deadline
        with otlp_sink(Sink(port=port)) as sink:
            export(request, timeout=20)  # the shipper's retry
            records = received_records(sink)
        assert len(records) == 10
        assert all(b"123-45-6789" not in r.SerializeToString() for r in records)


def test_slow_downstream_respects_deadline_and_refusals_map(tmp_path: Path) -> None:
    request = fluent_bit_request(2).SerializeToString()
    with otlp_sink(Sink(delay=5.0)) as sink, phimask_server(
        tmp_path, "--workers", "0", "--otlp-downstream", sink.url
    ) as server, server.channel() as channel:
        export = channel.unary_unary(EXPORT)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            export(request, timeout=1.5)
        assert time.monotonic() - started < 2.5
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                     grpc.StatusCode.DEADLINE_EXCEEDED)
        sink.delay = 0
        sink.status = grpc.StatusCode.PERMISSION_DENIED  # a misconfigured downstream
        with pytest.raises(grpc.RpcError) as info:
            export(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # the shipper keeps the data
        sink.status = grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as info:
            export(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unmaskable_record_is_reported_rest_delivered(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nfields:\n  - {path: patient.zip, action: zip3}\n")
    request = fluent_bit_request(3)
    bad = request.resource_logs[0].scope_logs[0].log_records[1]
    bad.body.kvlist_value.values[1].value.kvlist_value.values.append(kv("zip", "not a zip"))
    with otlp_sink() as sink, phimask_server(
        tmp_path, "--workers", "0", "--otlp-downstream", sink.url, "--policy", str(policy)
    ) as server, server.channel() as channel:
        reply = otlp_pb.ExportLogsServiceResponse.FromString(
            channel.unary_unary(EXPORT)(request.SerializeToString(), timeout=20))
    assert reply.partial_success.rejected_log_records == 1
    assert "operator_error" in reply.partial_success.error_message
    assert "not a zip" not in reply.partial_success.error_message
    logged = [json.loads(line) for line in server.log_lines if "records rejected" in line]
    records = received_records(sink)
    assert [r.time_unix_nano % 10 for r in records] == [0, 2]
    assert logged and logged[0]["indices"] == [1] and logged[0]["count"] == 1
    assert "not a zip" not in json.dumps(logged)


def test_no_downstream_is_unavailable(tmp_path: Path) -> None:
    with phimask_server(tmp_path, "--workers", "0") as server, server.channel() as channel:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(EXPORT)(fluent_bit_request(1).SerializeToString(), timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "--otlp-downstream" in (info.value.details() or "")


def test_gzip_requests_are_accepted(tmp_path: Path) -> None:
    with otlp_sink() as sink, phimask_server(
        tmp_path, "--workers", "0", "--otlp-downstream", sink.url
    ) as server, server.channel() as channel:
        channel.unary_unary(EXPORT)(fluent_bit_request(4).SerializeToString(), timeout=20,
                                    compression=grpc.Compression.Gzip)
    assert len(received_records(sink)) == 4


def test_batches_waiting_on_downstream_count_against_the_inflight_limit(tmp_path: Path) -> None:
    request = fluent_bit_request(2).SerializeToString()
    with otlp_sink(Sink(delay=3.0)) as sink, phimask_server(
        tmp_path, "--workers", "0", "--max-inflight", "2", "--otlp-downstream", sink.url
    ) as server, server.channel() as channel:
        export = channel.unary_unary(EXPORT)
        waiting = [export.future(request, timeout=20) for _ in range(2)]
        time.sleep(0.8)  # both are masked and waiting on the slow downstream
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            export(request, timeout=20)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "in-flight" in (info.value.details() or "")
        assert time.monotonic() - started < 1.0  # refused at once, not queued
        for future in waiting:
            future.result()
    assert len(received_records(sink)) == 4


def test_a_downstream_back_after_a_long_outage_is_used_within_seconds(tmp_path: Path) -> None:
    """gRPC's reconnect backoff grows to 120 s by default: after a long outage phimask
    would answer UNAVAILABLE for up to two minutes after the downstream came back. The
    forward channel caps it, so the first retry after the return gets through quickly."""
    port = _free_port()
    request = fluent_bit_request(3).SerializeToString()
    with phimask_server(tmp_path, "--workers", "0", "--otlp-downstream",
                        f"http://127.0.0.1:{port}") as server, server.channel() as channel:
        export = channel.unary_unary(EXPORT)
        outage_ends = time.monotonic() + 18  # uncapped, the next attempt is ~8 s later
        while time.monotonic() < outage_ends:
            with pytest.raises(grpc.RpcError) as info:
                export(request, timeout=1)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with otlp_sink(Sink(port=port)) as sink:
            back = time.monotonic()
            while True:  # a shipper retrying every half second
                try:
                    export(request, timeout=1)
                    break
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE
                    assert time.monotonic() - back < 30
                    time.sleep(0.5)
            took = time.monotonic() - back
            assert len(received_records(sink)) == 3
        assert took < 4.0, f"first OK {took:.1f} s after the downstream came back"
