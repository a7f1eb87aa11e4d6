"""Bad input against a real phimask server: every malformed, hostile or extreme request
gets its documented status (README, status tables), never UNKNOWN or INTERNAL, never a
value in the error message; every OK reply accounts for every record it acknowledged
(returned or forwarded masked, or listed as rejected); and afterwards the server still
answers and its log holds no PHI.

One module-scoped server (`--workers 1`, 1 MiB messages, 1000 records a request) with an
OTLP and a Vector sink as its downstreams; cases that need bigger inputs than the server
takes run in-process on the adapters.

The six bugs this matrix found (replies capped at the request limit, an OTLP bytes value
under an age rule failing its batch, a quadratic scanner path, policy files that escaped
PolicyError, alias bombs, keep hints inherited by nested free text) are fixed; their
tests stay as regressions.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from phimask._gen.phimask.v1 import transform_pb2 as pb
from phimask._gen.vector import event_pb2 as ev
from phimask._gen.vector import vector_pb2
from phimask.adapters.native import Limits, transform_request
from phimask.adapters.otlp import OTLP_ROOTS, transform_export
from phimask.adapters.vector import VECTOR_ROOTS, transform_push
from phimask.detect import Scanner, available_engines
from phimask.pipeline import Masker
from phimask.policy import compile_policy, default_policy_text, load_yaml
from tests.conftest import fixed_keyring
from tests.server.harness import RunningServer, phimask_server
from tests.server.sinks import Sink, otlp_sink, vector_sink

LIMIT = 1 << 20  # --max-message-bytes
MAX_RECORDS = 1000  # --max-batch-records
SSN, EMAIL, PHONE = "123-45-6789", "ann.lee@example.org", "(617) 555-0142"
PHI = (SSN, EMAIL, PHONE)
NOTE = f"called {PHONE} about SSN {SSN}, mail {EMAIL}"  # free text: the scanner's job

S = grpc.StatusCode
NEVER = (S.UNKNOWN, S.INTERNAL)


# --- raw protobuf --------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag(number, 2) + varint(len(payload)) + payload


# --- building requests ---------------------------------------------------------------------


def native_request(*payloads: Any) -> bytes:
    """Records with these payloads (bytes as they are, anything else as JSON)."""
    records = [pb.Record(payload=p if isinstance(p, bytes) else orjson.dumps(p), id=f"r{i}")
               for i, p in enumerate(payloads)]
    return pb.TransformRequest(records=records).SerializeToString()


def any_value(value: Any) -> AnyValue:
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, dict):
        out.kvlist_value.SetInParent()
        out.kvlist_value.values.extend(key_values(value))
    elif isinstance(value, list):
        out.array_value.SetInParent()
        out.array_value.values.extend(any_value(v) for v in value)
    return out


def key_values(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def otlp_message(*bodies: Any) -> ExportLogsServiceRequest:
    records = [LogRecord(body=any_value(b), attributes=key_values({"seq": i}))
               for i, b in enumerate(bodies)]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        scope_logs=[ScopeLogs(log_records=records)])])


def otlp_request(*bodies: Any) -> bytes:
    return otlp_message(*bodies).SerializeToString()


def vector_value(value: Any) -> ev.Value:
    out = ev.Value()
    if isinstance(value, bool):
        out.boolean = value
    elif isinstance(value, int):
        out.integer = value
    elif isinstance(value, float):
        out.float = value
    elif isinstance(value, str):
        out.raw_bytes = value.encode()
    elif isinstance(value, bytes):
        out.raw_bytes = value
    elif value is None:
        out.null = ev.NULL_VALUE
    elif isinstance(value, dict):
        out.map.SetInParent()
        for key, item in value.items():
            out.map.fields[key].CopyFrom(vector_value(item))
    elif isinstance(value, list):
        out.array.SetInParent()
        out.array.items.extend(vector_value(v) for v in value)
    return out


def vector_event(payload: Any) -> ev.EventWrapper:
    """An object root in `fields`; any other root in `value` (with Vector's dummy fields)."""
    log = ev.Log()
    if isinstance(payload, dict):
        for key, item in payload.items():
            log.fields[key].CopyFrom(vector_value(item))
    else:
        log.value.CopyFrom(vector_value(payload))
        log.fields["."].null = ev.NULL_VALUE
    return ev.EventWrapper(log=log)


def vector_request(*payloads: Any) -> bytes:
    return vector_pb2.PushEventsRequest(
        events=[vector_event(p) for p in payloads]).SerializeToString()


def exactly(size: int, build: Callable[[int], bytes]) -> bytes:
    """`build(k)` for the filler length k that makes it exactly `size` bytes."""
    k = max(0, size - len(build(0)))
    for _ in range(8):
        data = build(k)
        if len(data) == size:
            return data
        k = max(0, k + size - len(data))
    for near in range(max(0, k - 8), k + 8):
        data = build(near)
        if len(data) == size:
            return data
    raise AssertionError(f"no request of exactly {size} bytes")


def deep_json(levels: int) -> bytes:
    """`levels` nested objects, free text with PHI at the bottom."""
    return b'{"a":' * (levels - 1) + orjson.dumps({"note": NOTE}) + b"}" * (levels - 1)


def deep_otlp(levels: int) -> bytes:
    """A LogRecord body of `levels` nested kvlists (raw: protobuf's own builders refuse to
    nest this deep), PHI at the bottom."""
    inner = ld(1, NOTE.encode())  # AnyValue.string_value
    for _ in range(levels):
        key_value = ld(1, b"a") + ld(2, inner)  # KeyValue.key, .value
        inner = ld(6, ld(1, key_value))  # AnyValue.kvlist_value -> KeyValueList.values
    record = ld(5, inner)  # LogRecord.body
    return ld(1, ld(2, ld(2, record)))  # request.resource_logs.scope_logs.log_records


def deep_vector_event(levels: int) -> bytes:
    """A serialized EventWrapper whose field nests `levels` maps, PHI at the bottom."""
    inner = ld(1, NOTE.encode())  # Value.raw_bytes
    for _ in range(levels):
        inner = ld(7, ld(1, ld(1, b"a") + ld(2, inner)))  # Value.map -> ValueMap.fields entry
    return ld(1, ld(1, ld(1, b"deep") + ld(2, inner)))  # EventWrapper.log -> Log.fields entry


def vector_events(*events: bytes) -> bytes:
    """A PushEventsRequest of serialized EventWrappers."""
    return b"".join(ld(1, e) for e in events)


# --- the server and what it answers ----------------------------------------------------------


@dataclass
class Env:
    server: RunningServer
    otlp: Sink
    vector: Sink
    channel: grpc.Channel


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with otlp_sink() as otlp, vector_sink() as vector, phimask_server(
        tmp_path_factory.mktemp("state"), "--workers", "1",
        "--max-message-bytes", str(LIMIT), "--max-batch-records", str(MAX_RECORDS),
        "--otlp-downstream", otlp.url, "--vector-downstream", vector.url,
        "--forward-timeout", "5",
    ) as server, server.channel() as channel:
        yield Env(server, otlp, vector, channel)


@dataclass(frozen=True)
class Proto:
    name: str
    method: str
    build: Callable[..., bytes]  # a request from payloads (Python values)

    def __str__(self) -> str:
        return self.name


NATIVE = Proto("native", "/phimask.v1.BatchTransform/Transform", native_request)
OTLP = Proto("otlp", "/opentelemetry.proto.collector.logs.v1.LogsService/Export", otlp_request)
VECTOR = Proto("vector", "/vector.Vector/PushEvents", vector_request)
PROTOS = [NATIVE, OTLP, VECTOR]


@dataclass
class Sent:
    code: grpc.StatusCode
    details: str
    emitted: list[bytes] = field(default_factory=list)  # records returned or forwarded
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count


def assert_no_phi(blob: bytes | str, values: Sequence[str] = PHI) -> None:
    text = blob if isinstance(blob, str) else blob.decode("utf-8", "replace")
    for value in values:
        assert value not in text


def send(env: Env, proto: Proto, data: bytes, count: int, *, timeout: float = 30.0,
         compression: grpc.Compression | None = None) -> Sent:
    """Call `proto` with `data` (holding `count` records); for an OK reply, collect what came
    out and check that nothing acknowledged was lost: out + rejected == count."""
    otlp_seen, vector_seen = len(env.otlp.received), len(env.vector.received)
    log_seen = len(env.server.log_lines)
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = env.channel.unary_unary(proto.method)
    try:
        reply: bytes = call(data, timeout=timeout, compression=compression)
    except grpc.RpcError as exc:
        sent = Sent(exc.code(), exc.details() or "")
        assert sent.code not in NEVER, sent
        assert_no_phi(sent.details)
        return sent
    sent = Sent(S.OK, "")
    if proto is NATIVE:
        response = pb.TransformResponse.FromString(reply)
        assert response.policy_version.startswith("sha256:")
        sent.emitted = [r.payload + repr(sorted(r.attributes.items())).encode()
                        for r in response.records]
        sent.rejected.update(r.reason for r in response.rejections)
        indices = [r.index for r in response.rejections]
        assert len(set(indices)) == len(indices) and all(0 <= i < count for i in indices)
        for rejection in response.rejections:
            assert_no_phi(rejection.reason + rejection.rule)
    elif proto is OTLP:
        answer = ExportLogsServiceResponse.FromString(reply)
        for forwarded in env.otlp.received[otlp_seen:]:
            request = ExportLogsServiceRequest.FromString(forwarded)
            sent.emitted += [record.SerializeToString() for rl in request.resource_logs
                             for sl in rl.scope_logs for record in sl.log_records]
        message = answer.partial_success.error_message
        assert_no_phi(message)
        reasons = Counter({m[1]: int(m[2]) for m in re.finditer(r"(\w+) x(\d+)", message)})
        assert sum(reasons.values()) == answer.partial_success.rejected_log_records
        sent.rejected = reasons
    else:
        for forwarded in env.vector.received[vector_seen:]:
            pushed = vector_pb2.PushEventsRequest.FromString(forwarded)
            sent.emitted += [e.SerializeToString() for e in pushed.events
                             if e.WhichOneof("event") == "log"]
        # Vector has no partial success: the rejected are in the log, by reason.
        deadline = time.monotonic() + 3
        while True:
            sent.rejected = _logged_rejections(env.server.log_lines[log_seen:])
            if len(sent.emitted) + sum(sent.rejected.values()) >= count or (
                    time.monotonic() > deadline):
                break
            time.sleep(0.02)
    for emitted in sent.emitted:
        assert_no_phi(emitted)
    assert len(sent.emitted) + sum(sent.rejected.values()) == count, sent
    return sent


def _logged_rejections(lines: Sequence[str]) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "records rejected" and entry.get("protocol") == "vector":
            for reason, n in entry["reasons"].items():
                found[reason.partition(":")[0]] += n
    return found


def assert_status(sent: Sent, code: grpc.StatusCode) -> None:
    assert sent.code == code, sent


# --- truncated and malformed protobuf --------------------------------------------------------


def _three(proto: Proto) -> bytes:
    return proto.build({"note": NOTE}, {"patient": {"ssn": SSN}}, {"msg": "ok"})


@pytest.mark.parametrize("proto", PROTOS, ids=str)
@pytest.mark.parametrize("cut", [-1, -7, 3], ids=["last-byte", "last-7", "first-3"])
def test_truncated_protobuf_is_invalid_argument(env: Env, proto: Proto, cut: int) -> None:
    data = _three(proto)
    assert_status(send(env, proto, data[:cut], 3), S.INVALID_ARGUMENT)


# (protocol, request, records in it, status, rejection reasons)
WIRE_CASES: list[tuple[Proto, bytes, int, grpc.StatusCode, dict[str, int]]] = [
    # A field sent with a wire type its declaration does not have is an unknown field.
    (NATIVE, b"\x08\x01", 0, S.OK, {}),  # records (a message) as a varint
    (NATIVE, ld(1, b"\x08\x01" + ld(5, b"r0")), 1, S.OK, {"invalid_json": 1}),  # payload varint
    # Record.id (a string) as a fixed64: the record is masked, without its id
    (NATIVE, ld(1, ld(1, orjson.dumps({"note": NOTE})) + tag(5, 1) + bytes(8)), 1, S.OK, {}),
    (NATIVE, b"\x0c", 0, S.INVALID_ARGUMENT, {}),  # an end-group with no start
    (NATIVE, b"\x0f\x00", 0, S.INVALID_ARGUMENT, {}),  # wire type 7 does not exist
    (OTLP, b"\x08\x01", 0, S.OK, {}),
    (OTLP, ld(1, ld(2, ld(2, b"\x28\x01" + ld(6, ld(1, b"k") + ld(2, ld(1, NOTE.encode())))))),
     1, S.OK, {}),  # a LogRecord whose body is a varint, with a PHI attribute
    (OTLP, b"\x0f\x00", 0, S.INVALID_ARGUMENT, {}),
    (VECTOR, b"\x08\x01", 0, S.OK, {}),
    # raw_bytes as a varint: a Value of no kind, masked as null
    (VECTOR, vector_events(ld(1, ld(1, ld(1, b"k") + ld(2, b"\x08\x01")))), 1, S.OK, {}),
    # one event with an impossible wire type: that event alone is rejected
    (VECTOR, vector_events(ld(1, b"\x0f\x00"), vector_event({"note": NOTE}).SerializeToString()),
     2, S.OK, {"invalid_event": 1}),
    (VECTOR, b"\x0f\x00", 0, S.INVALID_ARGUMENT, {}),
]


@pytest.mark.parametrize(("proto", "data", "count", "code", "reasons"), WIRE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(WIRE_CASES)])
def test_wrong_wire_types(env: Env, proto: Proto, data: bytes, count: int,
                          code: grpc.StatusCode, reasons: dict[str, int]) -> None:
    sent = send(env, proto, data, count)
    assert_status(sent, code)
    assert sent.rejected == Counter(reasons)


@pytest.mark.parametrize("proto", PROTOS, ids=str)
def test_unknown_fields_are_tolerated(env: Env, proto: Proto) -> None:
    data = _three(proto)
    if proto is NATIVE:  # in the request and inside a record
        request = pb.TransformRequest.FromString(data)
        request.records[0].MergeFromString(tag(99, 0) + varint(7) + ld(100, b"extra"))
        data = request.SerializeToString()
    elif proto is OTLP:
        request_o = ExportLogsServiceRequest.FromString(data)
        request_o.resource_logs[0].scope_logs[0].log_records[0].MergeFromString(
            tag(99, 0) + varint(7))
        data = request_o.SerializeToString()
    else:
        request_v = vector_pb2.PushEventsRequest.FromString(data)
        request_v.events[0].log.MergeFromString(tag(99, 0) + varint(7))
        data = request_v.SerializeToString()
    sent = send(env, proto, data + tag(77, 0) + varint(1) + ld(78, b"unknown"), 3)
    assert_status(sent, S.OK)
    assert len(sent.emitted) == 3


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("levels", "reason"), [
    (64, None), (65, "too_deep"), (1000, "too_deep"),
    (1100, "invalid_json"),  # past orjson's own limit (1024): not JSON it will read
])
def test_native_deep_json(env: Env, levels: int, reason: str | None) -> None:
    sent = send(env, NATIVE, native_request(deep_json(levels), {"note": NOTE}), 2)
    assert_status(sent, S.OK)
    assert sent.rejected == (Counter({reason: 1}) if reason else Counter())


@pytest.mark.parametrize("levels", [20, 40, 1000])
def test_otlp_deep_kvlist(env: Env, levels: int) -> None:
    # Deeper than protobuf parses (~32 kvlists) is not a valid request: documented.
    sent = send(env, OTLP, deep_otlp(levels), 1)
    assert_status(sent, S.OK if levels <= 30 else S.INVALID_ARGUMENT)


@pytest.mark.parametrize("levels", [20, 40, 1000])
def test_vector_deep_map(env: Env, levels: int) -> None:
    # Deeper than protobuf parses: that event alone is rejected (invalid_event).
    good = vector_event({"note": NOTE}).SerializeToString()
    sent = send(env, VECTOR, vector_events(deep_vector_event(levels), good), 2)
    assert_status(sent, S.OK)
    assert sent.rejected == (Counter() if levels <= 30 else Counter({"invalid_event": 1}))


# --- sizes -----------------------------------------------------------------------------------


def _filled(proto: Proto) -> Callable[[int], bytes]:
    return lambda k: proto.build({"msg": "x" * k})


@pytest.mark.parametrize(("proto", "size", "code"), [
    pytest.param(NATIVE, LIMIT, S.OK),
    (NATIVE, LIMIT - 1024, S.OK),
    (NATIVE, LIMIT + 1, S.RESOURCE_EXHAUSTED),
    (OTLP, LIMIT, S.OK),
    (OTLP, LIMIT + 1, S.RESOURCE_EXHAUSTED),
    (VECTOR, LIMIT, S.OK),
    (VECTOR, LIMIT + 1, S.RESOURCE_EXHAUSTED),
], ids=["native-at", "native-under", "native-over", "otlp-at", "otlp-over", "vector-at",
        "vector-over"])
def test_message_size_limit(env: Env, proto: Proto, size: int, code: grpc.StatusCode) -> None:
    data = exactly(size, _filled(proto))
    assert len(data) == size
    assert_status(send(env, proto, data, 1), code)


@pytest.mark.parametrize("proto", PROTOS, ids=str)
def test_masked_batch_larger_than_the_limit(env: Env, proto: Proto) -> None:
    data = proto.build({"msg": "a@b.co " * (LIMIT * 6 // 10 // 7)})
    assert len(data) < LIMIT
    sent = send(env, proto, data, 1, timeout=2)
    assert sent.code in (S.OK, S.RESOURCE_EXHAUSTED, S.INVALID_ARGUMENT), sent
    assert "Sent message larger than max" not in sent.details  # phimask's words, not gRPC's


@pytest.mark.parametrize("proto", PROTOS, ids=str)
def test_huge_string_within_the_limit(env: Env, proto: Proto) -> None:
    filler = "lorem ipsum dolor sit amet " * (900_000 // 27 // 3)
    text = f"{NOTE} {filler} {NOTE} {filler} {NOTE} {filler} {NOTE}"
    sent = send(env, proto, proto.build({"msg": text}), 1)
    assert_status(sent, S.OK)
    assert len(sent.emitted) == 1 and b"[REDACTED:SSN]" in sent.emitted[0]


# --- text and numbers ------------------------------------------------------------------------


def test_native_invalid_utf8(env: Env) -> None:
    bad_json = b'{"note": "\xff\xfe ' + SSN.encode() + b'"}'
    sent = send(env, NATIVE, native_request(bad_json, b'{"a": "\\ud800"}', {"note": NOTE}), 3)
    assert_status(sent, S.OK)
    assert sent.rejected == Counter({"invalid_json": 2})
    # in protobuf strings (Record.id, an attribute): not a valid TransformRequest
    for record in (ld(1, b"{}") + ld(5, b"r\xff"),
                   ld(1, b"{}") + ld(2, ld(1, b"k") + ld(2, SSN.encode() + b"\xff"))):
        assert_status(send(env, NATIVE, ld(1, record), 1), S.INVALID_ARGUMENT)


def test_otlp_invalid_utf8(env: Env) -> None:
    bad = otlp_request({"note": NOTE}).replace(SSN.encode(), SSN.encode()[:-1] + b"\xff")
    assert_status(send(env, OTLP, bad, 1), S.INVALID_ARGUMENT)
    # bytes_value may hold anything (and is not scanned: no PHI in it here)
    sent = send(env, OTLP, otlp_request({"blob": b"\xff\xfe\x00", "note": NOTE}), 1)
    assert_status(sent, S.OK)


def test_vector_invalid_utf8(env: Env) -> None:
    # raw_bytes are bytes: the text around invalid UTF-8 is still masked
    sent = send(env, VECTOR, vector_request({"note": b"\xff\xfe " + NOTE.encode()}), 1)
    assert_status(sent, S.OK)
    assert b"\xff\xfe" in sent.emitted[0]
    # a map key is a protobuf string: that event alone is rejected
    bad_key = vector_event({"k\xe9y": NOTE}).SerializeToString().replace(
        "k\xe9y".encode(), b"k\xff\xff")
    good = vector_event({"note": NOTE}).SerializeToString()
    sent = send(env, VECTOR, vector_events(bad_key, good), 2)
    assert_status(sent, S.OK)
    assert sent.rejected == Counter({"invalid_event": 1})


def test_native_nan_and_infinity(env: Env) -> None:
    payloads = [b'{"v": NaN}', b'{"v": Infinity}', b'{"v": -Infinity}', b'{"v": 1e999}',
                {"v": 1.5e308, "note": NOTE}]
    sent = send(env, NATIVE, native_request(*payloads), 5)
    assert_status(sent, S.OK)
    assert sent.rejected == Counter({"invalid_json": 4})


def test_otlp_nan_and_infinity(env: Env) -> None:
    values = [float("nan"), float("inf"), float("-inf")]
    sent = send(env, OTLP, otlp_request(*({"v": v, "note": NOTE} for v in values)), 3)
    assert_status(sent, S.OK)  # OTLP doubles may be any IEEE value: forwarded as they are
    assert len(sent.emitted) == 3


def test_vector_nan_and_infinity(env: Env) -> None:
    payloads = [{"v": float("nan")}, {"v": float("inf"), "note": NOTE}, {"v": float("-inf")},
                {"ssn": float("nan")},  # replaced by the ssn hint: nothing left to refuse
                {"v": 1.5, "note": NOTE}]
    sent = send(env, VECTOR, vector_request(*payloads), 5)
    assert_status(sent, S.OK)
    assert sent.rejected == Counter({"invalid_float": 3})


def test_duplicate_keys(env: Env) -> None:
    # JSON: the last one wins, and only it goes out
    sent = send(env, NATIVE, native_request(
        f'{{"note": "{NOTE}", "note": "ok"}}'.encode(),
        f'{{"note": "ok", "note": "{NOTE}"}}'.encode()), 2)
    assert_status(sent, S.OK)
    assert orjson.loads(sent.emitted[0].partition(b"[")[0]) == {"note": "ok"}
    # OTLP kvlist: the same
    body = AnyValue()
    body.kvlist_value.values.extend([KeyValue(key="note", value=any_value(NOTE)),
                                     KeyValue(key="note", value=any_value("ok"))])
    message = otlp_message("placeholder")
    message.resource_logs[0].scope_logs[0].log_records[0].body.CopyFrom(body)
    assert_status(send(env, OTLP, message.SerializeToString(), 1), S.OK)
    # Vector map: protobuf keeps the last entry of a key
    entry = ld(1, ld(1, b"note") + ld(2, ld(1, NOTE.encode())))
    sent = send(env, VECTOR, vector_events(ld(1, entry + ld(1, ld(1, b"note") + ld(2, ld(
        1, b"ok"))) + entry)), 1)
    assert_status(sent, S.OK)


# --- batch shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("proto", PROTOS, ids=str)
def test_empty_batch(env: Env, proto: Proto) -> None:
    sent = send(env, proto, b"", 0)
    assert_status(sent, S.OK)
    assert not sent.emitted and not sent.rejected


def _tiny(proto: Proto, n: int) -> bytes:
    """`n` of the smallest records a request can hold."""
    if proto is NATIVE:
        return ld(1, ld(1, b"{}")) * n  # records { payload: "{}" }
    if proto is OTLP:
        return ld(1, ld(2, b"\x12\x00" * n))  # one resource, one scope, n empty LogRecords
    return ld(1, ld(1, b"")) * n  # events { log {} }


@pytest.mark.parametrize("proto", PROTOS, ids=str)
@pytest.mark.parametrize("n", [100_000, MAX_RECORDS + 1])
def test_too_many_records_is_resource_exhausted(env: Env, proto: Proto, n: int) -> None:
    data = _tiny(proto, n)
    assert len(data) < LIMIT
    sent = send(env, proto, data, n)
    assert_status(sent, S.RESOURCE_EXHAUSTED)
    assert str(n) in sent.details and str(MAX_RECORDS) in sent.details  # counts, no content


@pytest.mark.parametrize("proto", PROTOS, ids=str)
def test_records_at_the_limit_are_all_masked(env: Env, proto: Proto) -> None:
    data = proto.build(*({"note": NOTE, "i": i} for i in range(MAX_RECORDS)))
    sent = send(env, proto, data, MAX_RECORDS)
    assert_status(sent, S.OK)
    assert len(sent.emitted) == MAX_RECORDS


def test_native_non_object_roots(env: Env) -> None:
    sent = send(env, NATIVE, native_request(b"[]", b'"s"', b"1", b"null", b"true", b"", b" ",
                                            f'["{SSN}"]'.encode(), {"note": NOTE}), 9)
    assert_status(sent, S.OK)
    assert sent.rejected == Counter({"not_an_object": 6, "invalid_json": 2})


@pytest.mark.parametrize("proto", [OTLP, VECTOR], ids=str)
def test_non_object_roots_are_masked(env: Env, proto: Proto) -> None:
    # an OTLP body or a Vector event may be any value
    roots: list[Any] = [NOTE, [NOTE, 1, None], 123456789, 1.5, True, None, []]
    if proto is OTLP:
        roots.remove(None)  # an unset OTLP body is the same as no body
    sent = send(env, proto, proto.build(*roots), len(roots))
    assert_status(sent, S.OK)
    assert len(sent.emitted) == len(roots)


# --- compression and streams -----------------------------------------------------------------


@pytest.mark.parametrize("proto", PROTOS, ids=str)
@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate],
                         ids=["gzip", "deflate"])
def test_compressed_requests(env: Env, proto: Proto, compression: grpc.Compression) -> None:
    sent = send(env, proto, _three(proto), 3, compression=compression)
    assert_status(sent, S.OK)
    assert len(sent.emitted) == 3


@pytest.mark.parametrize("proto", PROTOS, ids=str)
def test_gzip_bomb_is_resource_exhausted(env: Env, proto: Proto) -> None:
    # ~1 KiB on the wire, over the limit once inflated
    data = proto.build({"msg": "x" * (LIMIT + 100)})
    assert len(gzip.compress(data)) < 10_000
    sent = send(env, proto, data, 1, compression=grpc.Compression.Gzip)
    assert_status(sent, S.RESOURCE_EXHAUSTED)


def test_stream_answers_then_refuses_a_bad_request(env: Env) -> None:
    good, bad = _three(NATIVE), _three(NATIVE)[:-1]
    call: grpc.StreamStreamMultiCallable[bytes, bytes] = env.channel.stream_stream(
        "/phimask.v1.BatchTransform/TransformStream")
    replies: list[bytes] = []
    with pytest.raises(grpc.RpcError) as info:
        replies.extend(call(iter([good, bad, good]), timeout=30))
    assert info.value.code() == S.INVALID_ARGUMENT
    assert_no_phi(info.value.details() or "")
    assert len(replies) == 1
    response = pb.TransformResponse.FromString(replies[0])
    assert len(response.records) == 3
    assert_no_phi(replies[0])


def test_otlp_bytes_under_age_hint_on_the_server(env: Env) -> None:
    sent = send(env, OTLP, otlp_request({"age": b"42"}, {"note": NOTE}), 2)
    assert_status(sent, S.OK)
    assert sent.rejected == Counter({"operator_error": 1})


# --- in-process: inputs bigger than the server above takes -------------------------------------


@dataclass(frozen=True)
class Maskers:
    native: Masker
    otlp: Masker
    vector: Masker


@pytest.fixture(scope="module")
def maskers(tmp_path_factory: pytest.TempPathFactory) -> Maskers:
    state = tmp_path_factory.mktemp("inproc")

    def build(roots: tuple[str, ...]) -> Masker:
        plan = compile_policy(load_yaml(default_policy_text(), "default"), roots=roots,
                              state_dir=state, keys=fixed_keyring())
        return Masker(plan, Scanner.build(plan.detectors))

    return Maskers(build(("payload", "attributes")), build(OTLP_ROOTS), build(VECTOR_ROOTS))


def test_five_megabyte_field_in_process(maskers: Maskers) -> None:
    filler = "lorem ipsum dolor sit amet, " * 36_000  # ~1 MB
    text = NOTE.join([filler] * 5)  # ~5 MB, PHI between the slices
    limits = Limits(MAX_RECORDS)
    native = transform_request(maskers.native, native_request({"msg": text}), limits)
    response = pb.TransformResponse.FromString(native)
    assert len(response.records) == 1
    otlp = transform_export(maskers.otlp, otlp_request({"msg": text}), limits)
    vector = transform_push(maskers.vector, vector_request({"msg": text}), limits)
    assert otlp.accepted == 1 and vector.accepted == 1
    for out in (native, otlp.forward, vector.forward):
        assert len(out) > 5_000_000
        assert_no_phi(out)


def test_otlp_bytes_under_age_hint_in_process(maskers: Maskers) -> None:
    result = transform_export(maskers.otlp, otlp_request({"age": b"42"}, {"note": NOTE}),
                              Limits(MAX_RECORDS))
    assert result.accepted == 1
    assert [r.reason for _, r in result.rejections] == ["operator_error"]


def test_scanner_many_matches_in_one_text_is_linear(maskers: Maskers) -> None:
    if "hyperscan" not in available_engines():
        pytest.skip("no hyperscan on this machine")
    detectors = maskers.native.plan.detectors
    text = f"SSN {SSN}; " * 12_000
    plain = Scanner.build(detectors, engine="re")
    started = time.perf_counter()
    expected = plain.scan(text)
    re_seconds = time.perf_counter() - started
    fast = Scanner.build(detectors, engine="hyperscan")
    started = time.perf_counter()
    found = fast.scan(text)
    hs_seconds = time.perf_counter() - started
    assert found == expected and len(found) == 12_000
    assert hs_seconds < max(0.5, 5 * re_seconds), (hs_seconds, re_seconds)


def test_top_level_keep_hint_does_not_keep_nested_free_text(maskers: Maskers) -> None:
    docs: list[Any] = [{"payload": {"time": {"note": NOTE}}, "attributes": {}},
                       {"payload": {"ts": [NOTE]}, "attributes": {}}]
    assert maskers.native.mask_batch(docs) == [None, None]
    assert_no_phi(orjson.dumps(docs))


# --- policy files: hot reload must survive a bad one --------------------------------------------


def test_hot_reload_survives_a_policy_yaml_cannot_construct(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nfields: []\n")
    with phimask_server(tmp_path / "state", "--workers", "0", "--policy", str(policy),
                        "--policy-reload-seconds", "0.1") as server:
        policy.write_text("version: 1\ndescription: 2024-13-01\nfields: []\n")
        deadline = time.monotonic() + 2
        while "policy reload failed" not in server.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "policy reload failed" in server.logs()
        policy.write_text("version: 1\nfields: [{path: a, action: redact}]\n")
        deadline = time.monotonic() + 3
        while "policy reloaded" not in server.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "policy reloaded" in server.logs()


# --- after all of the above ------------------------------------------------------------------


def test_server_still_serves_and_logged_no_phi(env: Env) -> None:
    """Runs last (file order): the matrix above left the server up, answering, PHI-free."""
    assert env.server.process.poll() is None
    for proto in PROTOS:
        sent = send(env, proto, _three(proto), 3)
        assert_status(sent, S.OK)
        assert len(sent.emitted) == 3
    time.sleep(0.2)  # the last lines
    assert_no_phi(env.server.logs())
    assert "Traceback" not in env.server.logs()
    for line in env.server.log_lines:
        json.loads(line)  # one JSON object a line, nothing else on stderr
