from __future__ import annotations

import re
from datetime import datetime
from statistics import mean
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from bench.corpus import (
    ENCODERS,
    encode_otlp_requests,
    encode_requests,
    encode_vector_requests,
    generate_records,
    iter_records,
    luhn_ok,
    msg_phi,
    planted_phi,
)
from phimask._gen.phimask.v1 import transform_pb2
from phimask._gen.vector import event_pb2, vector_pb2

NANP = re.compile(r"\D*(?:1\D+)?([2-9]\d\d)\D+([2-9]\d\d)\D+(\d{4})")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return generate_records(800, seed=3)


def test_same_seed_same_corpus_other_seed_other_corpus() -> None:
    assert generate_records(40, seed=5) == generate_records(40, seed=5)
    assert generate_records(40, seed=6) != generate_records(40, seed=5)
    assert generate_records(10, seed=5) == generate_records(40, seed=5)[:10]


def test_iter_records_matches_generate_records() -> None:
    stream = iter_records(seed=9)
    assert [next(stream) for _ in range(5)] == generate_records(5, seed=9)


def test_average_serialized_size(records: list[dict[str, Any]]) -> None:
    assert 500 <= mean(len(orjson.dumps(r)) for r in records) <= 600


def test_about_thirty_percent_of_messages_carry_phi(records: list[dict[str, Any]]) -> None:
    share = sum(bool(msg_phi(r)) for r in records) / len(records)
    assert 0.20 <= share <= 0.40


def test_planted_phi_appears_in_the_record(records: list[dict[str, Any]]) -> None:
    for rec in records:
        text = orjson.dumps(rec).decode()
        planted = planted_phi(rec)
        patient = rec["patient"]
        assert {
            patient["ssn"],
            patient["mrn"],
            patient["name"],
            rec["http"]["client_ip"],
        } <= planted
        assert msg_phi(rec) <= planted
        for value in planted:
            assert value and value in text, value
        for fragment in msg_phi(rec):
            assert fragment in rec["msg"]


def test_identifier_shapes(records: list[dict[str, Any]]) -> None:
    for rec in records:
        patient = rec["patient"]
        ssn = patient["ssn"].replace("-", "")
        assert len(ssn) == 9 and ssn.isdigit()
        assert ssn[:3] not in {"000", "666"} and ssn[0] != "9"
        assert ssn[3:5] != "00" and ssn[5:] != "0000"
        assert re.fullmatch(r"MRN-\d{8}", patient["mrn"])
        assert NANP.fullmatch(patient["phone"]), patient["phone"]
        for fragment in msg_phi(rec):
            digits = re.sub(r"[ -]", "", fragment)
            if len(digits) == 16 and digits.isdigit():
                assert luhn_ok(digits), fragment


def test_encode_requests_round_trip(records: list[dict[str, Any]]) -> None:
    requests = encode_requests(records, batch_size=300)
    decoded = [transform_pb2.TransformRequest.FromString(r) for r in requests]
    assert [len(d.records) for d in decoded] == [300, 300, 200]
    flat = [rec for d in decoded for rec in d.records]
    assert [orjson.loads(r.payload) for r in flat] == records
    ids = [r.id for r in flat]
    assert len(set(ids)) == len(ids) and all(ids)
    assert len(encode_requests(records)) == 1


# --- the OTLP and Vector encodings of the same records --------------------------------
#
# Decoded here with the generated classes directly, not with bench.wire's helpers, so a
# bug shared by an encoder and the harness's decoder cannot hide.

ODD_RECORD: dict[str, Any] = {
    "msg": "naïve café ☕, call (617) 555-0142",
    "flag": True,
    "off": False,
    "nothing": None,
    "empty_map": {},
    "empty_list": [],
    "nested": {"list": [1, "two", 3.5, None, {"deep": [False]}], "neg": -7},
    "big": 2**62,
}


def otlp_any(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: otlp_any(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [otlp_any(v) for v in value.array_value.values]
    return None if kind is None else getattr(value, kind)


def vector_any(value: event_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    assert kind is not None, "every Value must have a kind"
    if kind == "raw_bytes":
        return value.raw_bytes.decode()
    if kind == "map":
        return {k: vector_any(v) for k, v in value.map.fields.items()}
    if kind == "array":
        return [vector_any(v) for v in value.array.items]
    if kind == "null":
        return None
    return getattr(value, kind)


def otlp_log_records(request: bytes) -> list[logs_pb2.LogRecord]:
    req = logs_service_pb2.ExportLogsServiceRequest.FromString(request)
    assert len(req.resource_logs) == 1
    assert len(req.resource_logs[0].scope_logs) == 1
    return list(req.resource_logs[0].scope_logs[0].log_records)


def test_otlp_requests_round_trip(records: list[dict[str, Any]]) -> None:
    requests = encode_otlp_requests(records, batch_size=300)
    batches = [otlp_log_records(r) for r in requests]
    assert [len(b) for b in batches] == [300, 300, 200]
    flat = [lr for b in batches for lr in b]
    for lr, rec in zip(flat, records, strict=True):
        assert lr.body.WhichOneof("value") == "kvlist_value"  # Fluent Bit's shape
        body = otlp_any(lr.body)
        assert body == rec
        assert list(body) == list(rec)  # keys in the record's order
        ts = datetime.fromisoformat(rec["ts"])
        assert lr.time_unix_nano == round(ts.timestamp() * 1000) * 1_000_000
    first = {kv.key: kv.value for kv in flat[0].body.kvlist_value.values}
    http = {kv.key: kv.value for kv in first["http"].kvlist_value.values}
    assert http["status"].WhichOneof("value") == "int_value"
    assert http["latency_ms"].WhichOneof("value") == "double_value"
    assert http["method"].WhichOneof("value") == "string_value"
    assert first["patient"].WhichOneof("value") == "kvlist_value"
    blob = b"".join(requests)
    for value in set().union(*(planted_phi(r) for r in records[:50])):
        assert value.encode() in blob
    assert len(encode_otlp_requests(records)) == 1


def test_vector_requests_round_trip(records: list[dict[str, Any]]) -> None:
    requests = encode_vector_requests(records, batch_size=300)
    decoded = [vector_pb2.PushEventsRequest.FromString(r) for r in requests]
    assert [len(d.events) for d in decoded] == [300, 300, 200]
    flat = [event for d in decoded for event in d.events]
    for event, rec in zip(flat, records, strict=True):
        assert event.WhichOneof("event") == "log"
        assert not event.log.HasField("value")  # object-rooted: fields only
        assert {k: vector_any(v) for k, v in event.log.fields.items()} == rec
    fields = flat[0].log.fields
    assert fields["msg"].WhichOneof("kind") == "raw_bytes"
    assert fields["http"].map.fields["status"].WhichOneof("kind") == "integer"
    assert fields["http"].map.fields["latency_ms"].WhichOneof("kind") == "float"
    assert fields["patient"].WhichOneof("kind") == "map"
    blob = b"".join(requests)
    for value in set().union(*(planted_phi(r) for r in records[:50])):
        assert value.encode() in blob
    assert len(encode_vector_requests(records)) == 1


def test_every_json_type_encodes() -> None:
    (otlp,) = encode_otlp_requests([ODD_RECORD])
    (record,) = otlp_log_records(otlp)
    assert otlp_any(record.body) == ODD_RECORD
    body = {kv.key: kv.value for kv in record.body.kvlist_value.values}
    assert body["flag"].WhichOneof("value") == "bool_value"
    assert body["nothing"].WhichOneof("value") is None
    assert body["empty_map"].WhichOneof("value") == "kvlist_value"
    assert body["empty_list"].WhichOneof("value") == "array_value"
    assert record.time_unix_nano == 0  # no `ts`, no time

    (vector,) = encode_vector_requests([ODD_RECORD])
    (event,) = vector_pb2.PushEventsRequest.FromString(vector).events
    assert {k: vector_any(v) for k, v in event.log.fields.items()} == ODD_RECORD
    assert event.log.fields["flag"].WhichOneof("kind") == "boolean"
    assert event.log.fields["nothing"].WhichOneof("kind") == "null"
    assert event.log.fields["empty_map"].WhichOneof("kind") == "map"
    assert event.log.fields["empty_list"].WhichOneof("kind") == "array"


def test_encoders_by_protocol_agree_on_batches(records: list[dict[str, Any]]) -> None:
    assert set(ENCODERS) == {"native", "otlp", "vector"}
    for name, encode in ENCODERS.items():
        assert len(encode(records, 250)) == 4, name
        with pytest.raises(ValueError):
            encode(records, 0)
        with pytest.raises(TypeError):  # orjson's JSONEncodeError is a TypeError
            encode([{"what": object()}], 1)
