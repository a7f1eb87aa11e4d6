"""Cross routes: OTLP in -> a Vector source, Vector in -> an OTLP receiver."""

from __future__ import annotations

from pathlib import Path

from phimask._gen.vector import vector_pb2 as vec
from tests.server.harness import phimask_server
from tests.server.sinks import otlp_sink, vector_sink
from tests.server.test_otlp_forward import EXPORT, fluent_bit_request, received_records
from tests.server.test_vector_forward import PUSH, log_event, metric_event, value_of


def test_otlp_in_vector_out(tmp_path: Path) -> None:
    request = fluent_bit_request(2)
    with vector_sink() as sink, phimask_server(
        tmp_path, "--workers", "0", "--vector-downstream", sink.url, "--otlp-forward-to", "vector"
    ) as server, server.channel() as channel:
        channel.unary_unary(EXPORT)(request.SerializeToString(), timeout=20)
    (raw,) = sink.received
    events = vec.PushEventsRequest.FromString(raw).events
    assert len(events) == 2
    for i, event in enumerate(events):
        fields = {k: value_of(v) for k, v in event.log.fields.items()}
        assert fields["msg"] == f"visit {i}: call [REDACTED:PHONE]"
        assert fields["patient"]["ssn"] == "[REDACTED:SSN]"
        assert fields["patient"]["name"] == "[REDACTED:NAME]"
        assert fields["status"] == 200
        assert fields["severity_text"] == "INFO"
        sent = request.resource_logs[0].scope_logs[0].log_records[i].time_unix_nano
        assert event.log.fields["timestamp"].timestamp.ToNanoseconds() == sent
    assert b"123-45-6789" not in raw and b"Ann Lee" not in raw


def test_vector_in_otlp_out(tmp_path: Path) -> None:
    request = vec.PushEventsRequest(events=[log_event(0), metric_event(), log_event(1)])
    with otlp_sink() as sink, phimask_server(
        tmp_path, "--workers", "0", "--otlp-downstream", sink.url, "--vector-forward-to", "otlp"
    ) as server, server.channel() as channel:
        channel.unary_unary(PUSH)(request.SerializeToString(), timeout=20)
        logs = server.logs()
    records = received_records(sink)
    assert len(records) == 2
    for i, record in enumerate(records):
        body = {kv.key: kv.value for kv in record.body.kvlist_value.values}
        assert body["message"].string_value == (
            f"visit {i}: SSN [REDACTED:SSN], call [REDACTED:PHONE]")
        patient = {kv.key: kv.value.string_value for kv in body["patient"].kvlist_value.values}
        assert patient["name"] == "[REDACTED:NAME]" and patient["age"] == "90+"
        assert "timestamp" not in body
        assert record.time_unix_nano == 1_700_000_000 * 10**9 + 123
    assert b"123-45-6789" not in b"".join(sink.received)
    assert "events without an OTLP-logs form were not forwarded" in logs
