"""Vector in, masked Vector out: a client speaking Vector's v2 wire (our proto subset)
-> phimask -> a `vector` source stand-in."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from phimask._gen.vector import event_pb2 as ev
from phimask._gen.vector import vector_pb2 as vec
from tests.server.harness import phimask_server
from tests.server.sinks import vector_sink

PUSH = "/vector.Vector/PushEvents"


def s(text: str) -> ev.Value:
    return ev.Value(raw_bytes=text.encode())


def log_event(i: int) -> ev.EventWrapper:
    fields = {
        "message": s(f"visit {i}: SSN 123-45-6789, call (617) 555-0142"),
        "patient": ev.Value(map=ev.ValueMap(fields={"name": s("Ann Lee"), "age": ev.Value(
            integer=93), "mrn": s("MRN-00123456")})),
        "tags": ev.Value(array=ev.ValueArray(items=[s("er"), s("ann.lee@example.org"),
                                                    ev.Value(null=ev.NULL_VALUE)])),
        "timestamp": ev.Value(timestamp=Timestamp(seconds=1_700_000_000, nanos=123)),
        "status": ev.Value(integer=200),
    }
    meta = ev.Metadata(source_type="file", secrets=ev.Secrets(entries={"dd_api_key": "k"}))
    return ev.EventWrapper(log=ev.Log(fields=fields, metadata_full=meta))


def metric_event() -> ev.EventWrapper:
    # Fields phimask does not model (a counter) must come back byte-identical.
    unknown = b"\x0a\x05count\x12\x02\x08\x07"
    wrapper = ev.EventWrapper()
    wrapper.metric.MergeFromString(unknown)
    return wrapper


def value_of(v: ev.Value) -> object:
    kind = v.WhichOneof("kind")
    assert kind is not None, "every Value must have a kind"
    if kind == "raw_bytes":
        return v.raw_bytes.decode()
    if kind == "map":
        return {k: value_of(x) for k, x in v.map.fields.items()}
    if kind == "array":
        return [value_of(x) for x in v.array.items]
    if kind == "null":
        return None
    return getattr(v, kind)


def test_vector_events_masked_and_forwarded(tmp_path: Path) -> None:
    request = vec.PushEventsRequest(events=[log_event(0), metric_event(), log_event(1)])
    with vector_sink() as sink, phimask_server(
        tmp_path, "--workers", "1", "--vector-downstream", sink.url
    ) as server, server.channel() as channel:
        channel.unary_unary(PUSH)(request.SerializeToString(), timeout=20)
        health = vec.HealthCheckResponse.FromString(
            channel.unary_unary("/vector.Vector/HealthCheck")(b"", timeout=5))
        assert health.status == vec.SERVING
        std = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="vector.Vector"), timeout=5)
        assert std.status == health_pb2.HealthCheckResponse.SERVING
        logs = server.logs()
    assert len(sink.received) == 1
    out = vec.PushEventsRequest.FromString(sink.received[0])
    assert len(out.events) == 3
    assert out.events[1].SerializeToString() == metric_event().SerializeToString()
    for i, event in zip((0, 1), (out.events[0], out.events[2]), strict=True):
        fields = {k: value_of(v) for k, v in event.log.fields.items()}
        assert fields["message"] == f"visit {i}: SSN [REDACTED:SSN], call [REDACTED:PHONE]"
        assert fields["patient"]["name"] == "[REDACTED:NAME]"
        assert fields["patient"]["age"] == "90+"
        assert str(fields["patient"]["mrn"]).startswith("hmac:")
        assert fields["tags"] == ["er", "[REDACTED:EMAIL]", None]
        assert fields["status"] == 200
        assert event.log.fields["timestamp"].timestamp == Timestamp(seconds=1_700_000_000,
                                                                      nanos=123)
        assert event.log.metadata_full.secrets.entries["dd_api_key"] == "k"
        assert event.log.metadata_full.source_type == "file"
    for value in ("123-45-6789", "Ann Lee", "ann.lee@example.org", "MRN-00123456"):
        assert value.encode() not in sink.received[0]
        assert value not in logs


def test_vector_downstream_down_is_unavailable(tmp_path: Path) -> None:
    request = vec.PushEventsRequest(events=[log_event(0)]).SerializeToString()
    with vector_sink() as sink:
        url = sink.url
    with phimask_server(tmp_path, "--workers", "0", "--vector-downstream", url
                        ) as server, server.channel() as channel:
        try:
            channel.unary_unary(PUSH)(request, timeout=2)
            raise AssertionError("expected UNAVAILABLE")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
