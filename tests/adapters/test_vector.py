"""The Vector native-protocol adapter on real PushEventsRequest bytes."""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phimask._gen.vector import event_pb2 as ev
from phimask._gen.vector import vector_pb2
from phimask.adapters.native import Limits, RequestError
from phimask.adapters.vector import VECTOR_ROOTS, VectorResult, transform_push
from phimask.detect import Scanner
from phimask.pipeline import Masker, Rejection
from phimask.policy import compile_policy, load_yaml
from tests.conftest import fixed_keyring

POLICY = """\
version: 1
profile: safe-harbor
fields:
  - {path: patient.ssn, action: redact}
  - {path: patient.mrn, action: hmac}
  - {path: patient.dob, action: generalize}
  - {path: visit.admitted, action: generalize}
  - {path: visit.seen, action: redact}
  - {path: visit.kept, action: keep}
  - {path: debug, action: drop}
"""

# A policy under which the masker changes nothing: the codec alone is under test.
NOOP_POLICY = "version: 1\nprofile: none\nunmapped_strings: keep\n"

LIMITS = Limits()
SSN = "123-45-6789"


def build_masker(text: str, state_dir: Path) -> Masker:
    plan = compile_policy(load_yaml(text, "test.yaml"), roots=VECTOR_ROOTS,
                          state_dir=state_dir, keys=fixed_keyring())
    return Masker(plan, Scanner.build(plan.detectors))


@pytest.fixture
def masker(state_dir: Path) -> Masker:
    return build_masker(POLICY, state_dir)


# Building events


def to_value(value: Any, out: ev.Value | None = None) -> ev.Value:
    """A Python value as a Vector Value, the way Vector encodes it."""
    out = ev.Value() if out is None else out
    if isinstance(value, ev.Value):
        out.CopyFrom(value)
    elif isinstance(value, str):
        out.raw_bytes = value.encode()
    elif isinstance(value, bytes):
        out.raw_bytes = value
    elif isinstance(value, bool):
        out.boolean = value
    elif isinstance(value, int):
        out.integer = value
    elif isinstance(value, float):
        out.float = value
    elif value is None:
        out.null = ev.NULL_VALUE
    elif isinstance(value, dict):
        out.map.SetInParent()
        for key, item in value.items():
            to_value(item, out.map.fields[key])
    elif isinstance(value, list):
        out.array.SetInParent()
        for item in value:
            to_value(item, out.array.items.add())
    else:
        raise TypeError(type(value))
    return out


def stamp(seconds: int, nanos: int = 0) -> ev.Value:
    value = ev.Value()
    value.timestamp.seconds = seconds
    value.timestamp.nanos = nanos
    return value


def log_event(fields: dict[str, Any]) -> ev.EventWrapper:
    wrapper = ev.EventWrapper()
    wrapper.log.SetInParent()
    for key, value in fields.items():
        to_value(value, wrapper.log.fields[key])
    return wrapper


def scalar_event(value: Any) -> ev.EventWrapper:
    """A non-object root, as Vector sends it: `value` plus a dummy `fields = {".": null}`."""
    wrapper = ev.EventWrapper()
    to_value(value, wrapper.log.value)
    wrapper.log.fields["."].null = ev.NULL_VALUE
    return wrapper


def request(*events: ev.EventWrapper) -> bytes:
    return vector_pb2.PushEventsRequest(events=list(events)).SerializeToString()


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, body: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(body)) + body


def top_level_events(data: bytes) -> list[bytes]:
    """The serialized EventWrappers of a PushEventsRequest, exactly as they are written."""
    chunks, pos = [], 0
    while pos < len(data):
        assert data[pos] == 0x0A
        length, size = 0, 0
        while True:
            byte = data[pos + 1 + size]
            length |= (byte & 0x7F) << (7 * size)
            size += 1
            if byte < 0x80:
                break
        start = pos + 1 + size
        chunks.append(data[start:start + length])
        pos = start + length
    return chunks


def forwarded(result: VectorResult) -> list[ev.EventWrapper]:
    events = list(vector_pb2.PushEventsRequest.FromString(result.forward).events)
    for event in events:
        assert_every_value_has_a_kind(event)
    return events


def as_python(value: ev.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "raw_bytes":
        return value.raw_bytes.decode("utf-8", "replace")
    if kind == "map":
        return {k: as_python(v) for k, v in value.map.fields.items()}
    if kind == "array":
        return [as_python(v) for v in value.array.items]
    if kind == "timestamp":
        return ("ts", value.timestamp.seconds, value.timestamp.nanos)
    if kind == "null" or kind is None:
        return None
    return getattr(value, kind)


def fields_of(event: ev.EventWrapper) -> dict[str, Any]:
    return {k: as_python(v) for k, v in event.log.fields.items()}


def walk(value: ev.Value) -> Iterator[ev.Value]:
    yield value
    kind = value.WhichOneof("kind")
    if kind == "map":
        for item in value.map.fields.values():
            yield from walk(item)
    elif kind == "array":
        for item in value.array.items:
            yield from walk(item)


def assert_every_value_has_a_kind(event: ev.EventWrapper) -> None:
    if event.WhichOneof("event") != "log":
        return
    log = event.log
    roots = [*log.fields.values(), *([log.value] if log.HasField("value") else [])]
    for root in roots:
        for value in walk(root):
            assert value.WhichOneof("kind") is not None, value
            if value.WhichOneof("kind") == "float":
                assert math.isfinite(value.float)


# Masking


def test_phi_in_nested_maps_arrays_and_text_is_masked(masker: Masker) -> None:
    event = log_event({
        "message": f"patient jane@example.org called about SSN {SSN}",
        "patient": {"ssn": SSN, "mrn": "MRN-00123456", "dob": "1961-04-12",
                    "contact": {"phone_number": "555-867-5309"}},
        "notes": [{"text": f"call 212-555-0188 re SSN {SSN}"}, f"ssn {SSN}", 7],
        "account": 219099999,  # an SSN stored as a number: scanned, masked as text
        "debug": {"raw": SSN},
    })
    result = transform_push(masker, request(event), LIMITS)
    assert (result.accepted, result.passed_through, result.rejections) == (1, 0, [])
    (out,) = forwarded(result)
    got = fields_of(out)
    assert got["message"] == "patient [REDACTED:EMAIL] called about SSN [REDACTED:SSN]"
    assert got["patient"]["ssn"] == "[REDACTED:SSN]"
    assert got["patient"]["mrn"].startswith("hmac:")
    assert got["patient"]["dob"] == "1961"
    assert got["patient"]["contact"]["phone_number"] != "555-867-5309"
    assert got["notes"] == [{"text": "call [REDACTED:PHONE] re SSN [REDACTED:SSN]"},
                            "ssn [REDACTED:SSN]", 7]
    assert out.log.fields["account"].WhichOneof("kind") == "raw_bytes"  # a masked int
    assert "debug" not in got
    text = result.forward.decode("utf-8", "replace")
    for secret in (SSN, "219099999", "jane@example.org", "MRN-00123456", "04-12", "867-5309"):
        assert secret not in text


def test_non_phi_comes_back_identical(masker: Masker) -> None:
    plain = {"level": "info", "service": "ehr-api", "status": 200, "latency_ms": 37.5,
             "cached": False, "ratio": -0.25, "big": -(2**63), "tags": ["a", "b", 3, True],
             "empty_map": {}, "empty_list": [], "nothing": None,
             "http": {"method": "GET", "path": "/health", "bytes": 0}}
    event = log_event(plain)
    result = transform_push(masker, request(event), LIMITS)
    (out,) = forwarded(result)
    assert out == event  # same fields, same kinds
    assert out.log.fields["empty_map"].WhichOneof("kind") == "map"
    assert out.log.fields["empty_list"].WhichOneof("kind") == "array"
    assert out.log.fields["nothing"].WhichOneof("kind") == "null"
    assert out.log.fields["status"].WhichOneof("kind") == "integer"
    assert out.log.fields["cached"].WhichOneof("kind") == "boolean"


def test_nulls_stay_nulls(masker: Masker) -> None:
    event = log_event({"a": None, "patient": {"ssn": None}, "list": [None, "x", None]})
    (out,) = forwarded(transform_push(masker, request(event), LIMITS))
    assert fields_of(out) == {"a": None, "patient": {"ssn": None}, "list": [None, "x", None]}
    assert out.log.fields["patient"].map.fields["ssn"].WhichOneof("kind") == "null"
    assert [v.WhichOneof("kind") for v in out.log.fields["list"].array.items] == [
        "null", "raw_bytes", "null"]


def test_a_value_without_a_kind_goes_back_as_null(masker: Masker) -> None:
    event = log_event({"a": "x"})
    event.log.fields["unset"].SetInParent()  # a Value with no kind: Vector would drop it
    event.log.fields["list"].array.items.add()
    (out,) = forwarded(transform_push(masker, request(event), LIMITS))
    assert out.log.fields["unset"].WhichOneof("kind") == "null"
    assert out.log.fields["list"].array.items[0].WhichOneof("kind") == "null"


def test_metadata_and_secrets_pass_through_untouched(
        masker: Masker, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    event = log_event({"message": f"SSN {SSN}"})
    log = event.log
    to_value({"vector": {"source_type": "file"}, "note": f"ssn {SSN}"}, log.metadata)
    full = log.metadata_full
    to_value({"datadog_api_key": "abc", "path": "/var/log/app.log"}, full.value)
    full.datadog_origin_metadata.origin_product = 10
    full.datadog_origin_metadata.origin_service = 3
    full.source_id = "in_file"
    full.source_type = "file"
    full.upstream_id.component = "remap"
    full.upstream_id.port = "out"
    full.secrets.entries["datadog_api_key"] = "s3cr3t-key-value"
    full.secrets.entries["splunk_hec_token"] = "t0ken-value"
    full.source_event_id = b"\x01\x02\x03"
    result = transform_push(masker, request(event), LIMITS)
    (out,) = forwarded(result)
    assert out.log.fields["message"].raw_bytes == b"SSN [REDACTED:SSN]"
    assert out.log.metadata == log.metadata
    assert out.log.metadata_full == log.metadata_full
    assert dict(out.log.metadata_full.secrets.entries) == {
        "datadog_api_key": "s3cr3t-key-value", "splunk_hec_token": "t0ken-value"}
    for record in caplog.records:
        assert "s3cr3t" not in record.getMessage() and "t0ken" not in record.getMessage()


def test_non_object_root_is_masked_and_sent_back_in_value(masker: Masker) -> None:
    event = scalar_event(f"login failed for SSN {SSN} from jane@example.org")
    result = transform_push(masker, request(event), LIMITS)
    assert result.accepted == 1
    (out,) = forwarded(result)
    assert out.log.value.raw_bytes == b"login failed for SSN [REDACTED:SSN] from [REDACTED:EMAIL]"
    assert list(out.log.fields) == ["."]
    assert out.log.fields["."].WhichOneof("kind") == "null"


def test_non_object_roots_of_other_kinds(masker: Masker) -> None:
    events = [scalar_event(219099999), scalar_event([f"ssn {SSN}", 1]), scalar_event(None),
              scalar_event(2.5)]
    out = forwarded(transform_push(masker, request(*events), LIMITS))
    assert [as_python(e.log.value) for e in out] == [
        "[REDACTED:SSN]", ["ssn [REDACTED:SSN]", 1], None, 2.5]
    assert out[3].log.value.WhichOneof("kind") == "float"


def test_fields_beside_a_value_root_cannot_carry_phi_through(masker: Masker) -> None:
    event = scalar_event("hello")
    event.log.fields["ssn"].raw_bytes = SSN.encode()  # not what Vector sends; Vector reads value
    (out,) = forwarded(transform_push(masker, request(event), LIMITS))
    assert out.log.value.raw_bytes == b"hello"
    assert list(out.log.fields) == ["."] and SSN.encode() not in out.SerializeToString()


# Timestamps


def test_timestamps_round_trip_exactly_when_unmasked(masker: Masker) -> None:
    cases = [stamp(1740988800, 123456789), stamp(1740988800), stamp(-62135596800),
             stamp(253402300799, 999_999_999), stamp(0, 1000)]
    events = [log_event({"timestamp": case, "visit": {"kept": case}}) for case in cases]
    out = forwarded(transform_push(masker, request(*events), LIMITS))
    for event, case in zip(out, cases, strict=True):
        assert event.log.fields["timestamp"] == case
        assert event.log.fields["visit"].map.fields["kept"] == case


def test_timestamps_as_native_treats_date_strings(masker: Masker) -> None:
    when = stamp(1700000000, 5)  # 2023-11-14T22:13:20.000000005Z
    event = log_event({"visit": {"admitted": when, "seen": when, "other_at": when},
                       "patient": {"dob": stamp(-275_000_000)}})  # 1961-04-15
    (out,) = forwarded(transform_push(masker, request(event), LIMITS))
    visit = out.log.fields["visit"].map.fields
    assert visit["admitted"].raw_bytes == b"2023"  # generalize: the year
    assert visit["seen"].raw_bytes == b"[REDACTED:SEEN]"  # redact: a string
    assert visit["other_at"].raw_bytes == b"[REDACTED:DATE]"  # unmapped: scanned
    assert out.log.fields["patient"].map.fields["dob"].raw_bytes == b"1961"


@pytest.mark.parametrize(("seconds", "nanos", "text"), [
    (1700000000, 0, "2023-11-14T22:13:20Z"),
    (1700000000, 5_000_000, "2023-11-14T22:13:20.005Z"),
    (1700000000, 5_000, "2023-11-14T22:13:20.000005Z"),
    (1700000000, 5, "2023-11-14T22:13:20.000000005Z"),
    (-62135596800, 0, "0001-01-01T00:00:00Z"),
    (253402300799, 999_999_999, "9999-12-31T23:59:59.999999999Z"),
])
def test_a_timestamp_is_masked_as_its_rfc3339_text(masker: Masker, seconds: int, nanos: int,
                                                   text: str) -> None:
    events = [log_event({"patient": {"mrn": stamp(seconds, nanos)}}),
              log_event({"patient": {"mrn": text}})]
    a, b = forwarded(transform_push(masker, request(*events), LIMITS))
    assert a.log.fields["patient"].map.fields["mrn"].raw_bytes.startswith(b"hmac:")
    assert a == b


def test_invalid_timestamp_and_float_reject_their_event(masker: Masker) -> None:
    events = [log_event({"t": stamp(253402300800)}), log_event({"t": stamp(0, 10**9)}),
              log_event({"x": math.nan}), log_event({"x": [-math.inf]}), log_event({"ok": 1}),
              log_event({"patient": {"ssn": math.nan}})]  # replaced: nothing to refuse
    result = transform_push(masker, request(*events), LIMITS)
    assert result.rejections == [(0, Rejection("invalid_timestamp")),
                                 (1, Rejection("invalid_timestamp")),
                                 (2, Rejection("invalid_float")),
                                 (3, Rejection("invalid_float"))]
    assert [fields_of(e) for e in forwarded(result)] == [
        {"ok": 1}, {"patient": {"ssn": "[REDACTED:SSN]"}}]


# Bytes that are not UTF-8


def test_non_utf8_bytes_round_trip_and_are_still_scanned(masker: Masker) -> None:
    event = log_event({"latin1": b"caf\xe9 au lait",
                       "mixed": b"\xff SSN " + SSN.encode() + b" \xfe"})
    (out,) = forwarded(transform_push(masker, request(event), LIMITS))
    assert out.log.fields["latin1"].raw_bytes == b"caf\xe9 au lait"
    assert out.log.fields["mixed"].raw_bytes == b"\xff SSN [REDACTED:SSN] \xfe"


def test_non_utf8_bytes_an_operator_cannot_take_reject_only_their_event(masker: Masker) -> None:
    events = [log_event({"patient": {"mrn": b"MRN-001\xff"}}),
              log_event({"patient": {"ssn": SSN}})]
    result = transform_push(masker, request(*events), LIMITS)
    assert result.rejections == [(0, Rejection("invalid_utf8", "patient.mrn"))]
    assert [fields_of(e) for e in forwarded(result)] == [{"patient": {"ssn": "[REDACTED:SSN]"}}]


# Metrics, traces, rejections


METRIC_BODY = (field(1, b"requests_total") + bytes([0x10, 0x96, 0x01])  # name, a varint
               + field(7, field(1, b"tag") + field(2, b"value"))  # a nested message
               + bytes([0x19]) + struct.pack("<d", 1.5)  # a fixed64
               + field(2000, b"\xde\xad\xbe\xef"))  # a field number Vector may add later
TRACE_BODY = field(1, field(1, b"span") + field(2, b"\x0a\x03abc")) + field(3, b"")


def test_metric_and_trace_events_pass_through_byte_identical(masker: Masker) -> None:
    metric = field(2, METRIC_BODY)
    trace = field(3, TRACE_BODY)
    first = log_event({"msg": f"SSN {SSN}"}).SerializeToString()
    last = log_event({"msg": "fine"}).SerializeToString()
    data = b"".join(field(1, e) for e in (first, metric, trace, last))
    result = transform_push(masker, data, LIMITS)
    assert (result.accepted, result.passed_through, result.rejections) == (2, 2, [])
    chunks = top_level_events(result.forward)
    assert chunks[1] == metric and chunks[2] == trace
    out = forwarded(result)
    assert [e.WhichOneof("event") for e in out] == ["log", "metric", "trace", "log"]
    assert fields_of(out[0]) == {"msg": "SSN [REDACTED:SSN]"}


def test_unmaskable_event_is_rejected_by_index_and_the_rest_forwarded(masker: Masker) -> None:
    events = [log_event({"patient": {"dob": "1961-04-12"}}),
              log_event({"patient": {"dob": "the day after the storm"}}),
              ev.EventWrapper(metric=ev.Metric()),
              log_event({"patient": {"ssn": SSN}})]
    result = transform_push(masker, request(*events), LIMITS)
    assert result.rejections == [(1, Rejection("operator_error", "patient.dob"))]
    assert (result.accepted, result.passed_through) == (2, 1)
    out = forwarded(result)
    assert [e.WhichOneof("event") for e in out] == ["log", "metric", "log"]
    assert fields_of(out[0]) == {"patient": {"dob": "1961"}}
    assert fields_of(out[2]) == {"patient": {"ssn": "[REDACTED:SSN]"}}


def test_every_event_rejected_leaves_nothing_to_forward(masker: Masker) -> None:
    events = [log_event({"patient": {"dob": "soon"}}), ev.EventWrapper()]
    result = transform_push(masker, request(*events), LIMITS)
    assert result.forward == b""
    assert result.rejections == [(0, Rejection("operator_error", "patient.dob")),
                                 (1, Rejection("unsupported_event"))]


def test_an_event_nested_too_deep_to_parse_is_rejected_alone(masker: Masker) -> None:
    deep: Any = f"ssn {SSN}"
    for _ in range(40):
        deep = {"k": deep}
    good = field(1, log_event({"msg": f"SSN {SSN}"}).SerializeToString())
    bad = field(1, log_event({"deep": deep}).SerializeToString())
    metric = field(1, field(2, METRIC_BODY))
    with pytest.raises(DecodeError):  # upb cannot read the request as a whole
        vector_pb2.PushEventsRequest.FromString(good + bad + metric)
    result = transform_push(masker, good + bad + metric + good, LIMITS)
    assert result.rejections == [(1, Rejection("invalid_event"))]
    assert (result.accepted, result.passed_through) == (2, 1)
    assert top_level_events(result.forward)[1] == field(2, METRIC_BODY)
    assert SSN.encode() not in result.forward


# Bad requests


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x0a\x10" + SSN.encode(),
                                  b"\x0a\xff" + SSN.encode(), b"\x0f" + SSN.encode()])
def test_malformed_bytes_are_invalid_argument_without_content(masker: Masker, data: bytes) -> None:
    with pytest.raises(RequestError) as info:
        transform_push(masker, data, LIMITS)
    assert info.value.status == "INVALID_ARGUMENT"
    assert SSN not in str(info.value) and "123" not in str(info.value)


def test_too_many_events_is_resource_exhausted(masker: Masker) -> None:
    data = request(*[log_event({"n": i}) for i in range(3)])
    with pytest.raises(RequestError) as info:
        transform_push(masker, data, Limits(max_batch_records=2))
    assert info.value.status == "RESOURCE_EXHAUSTED"
    assert str(info.value).startswith("events: 3 ")
    assert transform_push(masker, data, Limits(max_batch_records=3)).accepted == 3


def test_empty_request(masker: Masker) -> None:
    assert transform_push(masker, b"", LIMITS) == VectorResult(b"", 0, 0, [])
    assert transform_push(masker, request(), LIMITS) == VectorResult(b"", 0, 0, [])


# The codec alone: with a policy that masks nothing, every event comes back as it came.

leaves = st.one_of(
    st.text(max_size=20), st.binary(max_size=12),
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(), st.none(),
    st.builds(stamp, st.integers(-62135596800, 253402300799), st.integers(0, 999_999_999)),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.one_of(
    st.dictionaries(st.text(max_size=8), values, max_size=5).map(log_event),
    values.filter(lambda v: not isinstance(v, dict)).map(scalar_event),
), max_size=5))
def test_unmasked_events_round_trip(events: list[ev.EventWrapper], state_dir: Path) -> None:
    masker = _noop_masker(state_dir)
    result = transform_push(masker, request(*events), LIMITS)
    assert (result.accepted, result.rejections) == (len(events), [])
    assert forwarded(result) == events if events else result.forward == b""


_noop: dict[str, Masker] = {}


def _noop_masker(state_dir: Path) -> Masker:
    if "m" not in _noop:
        _noop["m"] = build_masker(NOOP_POLICY, state_dir)
    return _noop["m"]
