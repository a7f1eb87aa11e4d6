"""The OTLP logs adapter on real ExportLogsServiceRequest messages."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from bench.corpus import generate_records
from phimask._gen.phimask.v1 import transform_pb2 as pb
from phimask.adapters.native import Limits, RequestError, transform_request
from phimask.adapters.otlp import (
    OTLP_ROOTS,
    OtlpResult,
    partial_success_message,
    transform_export,
)
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
  - {path: patient.address.zip, action: zip3}
  - {path: attributes.user, action: redact}
  - {path: resource.site_zip, action: zip3}
  - {path: scope.attributes.tenant_zip, action: zip3}
"""

LIMITS = Limits()


def build_masker(text: str, state_dir: Path, roots: tuple[str, ...] = OTLP_ROOTS) -> Masker:
    plan = compile_policy(load_yaml(text, "test.yaml"), roots=roots, state_dir=state_dir,
                          keys=fixed_keyring())
    return Masker(plan, Scanner.build(plan.detectors))


@pytest.fixture
def masker(state_dir: Path) -> Masker:
    return build_masker(POLICY, state_dir)


# --- building and reading real messages ---------------------------------------------------


def any_value(value: Any) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    raise TypeError(type(value))


def key_values(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in values.items()]


def python(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "kvlist_value":
        return {kv.key: python(kv.value) for kv in value.kvlist_value.values}
    if which == "array_value":
        return [python(v) for v in value.array_value.values]
    return None if which is None else getattr(value, which)


def attributes_of(kvs: Any) -> dict[str, Any]:
    return {kv.key: python(kv.value) for kv in kvs}


def record(body: Any = None, attributes: dict[str, Any] | None = None, **fields: Any
           ) -> LogRecord:
    out = LogRecord(attributes=key_values(attributes or {}), **fields)
    if body is not None:
        out.body.CopyFrom(any_value(body))
    return out


def request(*resource_logs: ResourceLogs) -> bytes:
    return ExportLogsServiceRequest(resource_logs=resource_logs).SerializeToString()


def resource(*scope_logs: ScopeLogs, attributes: dict[str, Any] | None = None,
             **fields: Any) -> ResourceLogs:
    out = ResourceLogs(scope_logs=scope_logs, **fields)
    out.resource.attributes.extend(key_values(attributes or {}))
    return out


def scope(*records: LogRecord, **fields: Any) -> ScopeLogs:
    return ScopeLogs(log_records=records, **fields)


def forwarded(result: OtlpResult) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest.FromString(result.forward)


def all_records(message: ExportLogsServiceRequest) -> list[LogRecord]:
    return [r for rl in message.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def one_body(masker: Masker, body: Any, **fields: Any) -> Any:
    result = transform_export(masker, request(resource(scope(record(body, **fields)))), LIMITS)
    assert result.rejections == [] and result.accepted == 1
    (out,) = all_records(forwarded(result))
    return python(out.body)


# --- PHI gets masked wherever it sits -----------------------------------------------------


def test_kvlist_body_is_masked(masker: Masker) -> None:
    body = one_body(masker, {
        "patient": {"ssn": "123-45-6789", "mrn": "MRN-00123456", "dob": "1961-04-12",
                    "address": {"zip": "02139"}},
        "msg": "call 212-555-0188 about results",
        "level": "info",
    })
    assert body["patient"]["ssn"] == "[REDACTED:SSN]"
    assert body["patient"]["mrn"].startswith("hmac:")
    assert body["patient"]["dob"] == "1961"
    assert body["patient"]["address"]["zip"] == "021"
    assert body["msg"] == "call [REDACTED:PHONE] about results"
    assert body["level"] == "info"


def test_plain_string_body_is_scanned(masker: Masker) -> None:
    body = one_body(masker, "identity check: caller gave SSN 219-09-9999 and jane@example.org")
    assert body == "identity check: caller gave SSN [REDACTED:SSN] and [REDACTED:EMAIL]"


def test_record_attributes_are_masked(masker: Masker) -> None:
    data = request(resource(scope(record(
        "ok", {"user": "jdoe", "patient_email": "jane@example.org", "http.status": 200,
               "note": "reach me at 212-555-0188"}))))
    (out,) = all_records(forwarded(transform_export(masker, data, LIMITS)))
    assert attributes_of(out.attributes) == {
        "user": "[REDACTED:USER]",
        "patient_email": "[REDACTED:EMAIL]",
        "http.status": 200,
        "note": "reach me at [REDACTED:PHONE]",
    }


def test_attribute_drops_and_duplicates(state_dir: Path) -> None:
    masker = build_masker(POLICY + "  - {path: attributes.debug, action: drop}\n", state_dir)
    dropped = record("x", {"debug": "raw 123-45-6789", "host": "web-1"})
    duplicated = LogRecord(attributes=[
        KeyValue(key="k", value=any_value("first")), KeyValue(key="n", value=any_value(1)),
        KeyValue(key="k", value=any_value("second"))])
    data = request(resource(scope(dropped, duplicated)))
    out_dropped, out_duplicated = all_records(forwarded(transform_export(masker, data, LIMITS)))
    assert [(kv.key, python(kv.value)) for kv in out_dropped.attributes] == [("host", "web-1")]
    assert [(kv.key, python(kv.value)) for kv in out_duplicated.attributes] == [
        ("k", "second"), ("n", 1)]


def test_resource_attributes_are_masked_once_for_all_records(masker: Masker) -> None:
    data = request(resource(
        scope(record("a"), record("b")),
        attributes={"service.name": "ehr-api", "patient_mrn": "MRN-00123456",
                    "site_zip": "02139", "contact": "admin jane@example.org"},
        schema_url="https://opentelemetry.io/schemas/1.9.0",
    ))
    result = transform_export(masker, data, LIMITS)
    assert result.accepted == 2
    (rl,) = forwarded(result).resource_logs
    attrs = attributes_of(rl.resource.attributes)
    assert attrs["service.name"] == "ehr-api"
    assert attrs["patient_mrn"].startswith("hmac:")
    assert attrs["site_zip"] == "021"
    assert attrs["contact"] == "admin [REDACTED:EMAIL]"
    assert rl.schema_url == "https://opentelemetry.io/schemas/1.9.0"


def test_scope_shape_and_masking(state_dir: Path) -> None:
    policy = POLICY + "  - {path: scope.scope_version, action: redact}\n"
    masker = build_masker(policy, state_dir)
    sl = scope(record("x"), schema_url="s")
    sl.scope.name = "my.instrumentation.library"
    sl.scope.version = "1.2.3"
    sl.scope.dropped_attributes_count = 4
    sl.scope.attributes.extend(key_values({"tenant_zip": "02139", "owner": "jane@example.org"}))
    (out_sl,) = forwarded(transform_export(masker, request(resource(sl)), LIMITS)) \
        .resource_logs[0].scope_logs
    # A scope's name is not a person's name: safe-harbor's `name` hint does not reach it.
    assert out_sl.scope.name == "my.instrumentation.library"
    assert out_sl.scope.version == "[REDACTED:SCOPE_VERSION]"
    assert out_sl.scope.dropped_attributes_count == 4
    assert attributes_of(out_sl.scope.attributes) == {"tenant_zip": "021",
                                                      "owner": "[REDACTED:EMAIL]"}
    assert out_sl.schema_url == "s"


def test_scope_fields_and_attributes_can_be_dropped(state_dir: Path) -> None:
    masker = build_masker(POLICY + "  - {path: scope.attributes, action: drop}\n"
                          "  - {path: scope.scope_name, action: drop}\n", state_dir)
    sl = scope(record("x"))
    sl.scope.name, sl.scope.version = "lib", "1.0"
    sl.scope.attributes.extend(key_values({"owner": "jane@example.org", "n": 1}))
    (out_sl,) = forwarded(transform_export(masker, request(resource(sl)), LIMITS)) \
        .resource_logs[0].scope_logs
    assert (out_sl.scope.name, out_sl.scope.version) == ("", "1.0")
    assert not out_sl.scope.attributes
    assert python(out_sl.log_records[0].body) == "x"


# --- what is not PHI goes out as it came ----------------------------------------------------

FIELDS: dict[str, Any] = {
    "time_unix_nano": 1_700_000_000_123_456_789,
    "observed_time_unix_nano": 1_700_000_000_987_654_321,
    "severity_number": 17,
    "severity_text": "ERROR",
    "flags": 0x01,
    "trace_id": bytes(range(16)),
    "span_id": bytes(range(8, 16)),
    "event_name": "patient.lookup",
    "dropped_attributes_count": 3,
}


def test_non_phi_fields_are_byte_identical(masker: Masker) -> None:
    phi = record({"patient": {"ssn": "123-45-6789"}}, {"user": "jdoe"}, **FIELDS)
    clean = record({"msg": "health probe ok", "n": 3}, {"host": "web-1"}, **FIELDS)
    rl = resource(scope(phi, clean, schema_url="https://scope/1"),
                  attributes={"service.name": "ehr"}, schema_url="https://resource/1")
    rl.resource.dropped_attributes_count = 7
    original = ExportLogsServiceRequest(resource_logs=[rl])
    result = transform_export(masker, original.SerializeToString(), LIMITS)
    out = forwarded(result)
    out_phi, out_clean = all_records(out)

    # Untouched record: the very same bytes.
    assert out_clean.SerializeToString() == clean.SerializeToString()
    # Masked record: everything but body and attributes is the same bytes.
    assert python(out_phi.body) == {"patient": {"ssn": "[REDACTED:SSN]"}}
    for message in (out_phi, phi):
        message.ClearField("body")
        message.ClearField("attributes")
    assert out_phi.SerializeToString() == phi.SerializeToString()
    assert out.resource_logs[0].schema_url == "https://resource/1"
    assert out.resource_logs[0].resource.dropped_attributes_count == 7
    assert out.resource_logs[0].scope_logs[0].schema_url == "https://scope/1"


def test_a_request_without_phi_is_forwarded_byte_identical(masker: Masker) -> None:
    sl = scope(record({"msg": "request completed", "status": 200, "ok": True, "ms": 1.5,
                       "tags": ["a", 1], "raw": b"\x00\xff"}, {"host": "web-1"}, **FIELDS),
               record("health probe ok"), schema_url="s")
    sl.scope.name = "lib"
    data = request(resource(sl, attributes={"service.name": "ehr-api"}, schema_url="r"))
    assert transform_export(masker, data, LIMITS).forward == data


def test_value_types_are_preserved(masker: Masker) -> None:
    body = {
        "count": 42,
        "negative": -(2**63),
        "ok": True,
        "off": False,
        "ratio": 0.25,
        "nan": math.inf,
        "items": [1, "two", 3.0, False, None, [b"\x01"], {"k": "v"}],
        "blob": b"\x00\x9f\xffnot utf-8",
        "nothing": None,
        "empty_map": {},
        "empty_list": [],
        "empty_string": "",
        "patient": {"ssn": "123-45-6789"},  # so the record is rewritten
    }
    sent = any_value(body)
    result = transform_export(masker, request(resource(scope(LogRecord(body=sent)))), LIMITS)
    (out,) = all_records(forwarded(result))
    got = out.body.kvlist_value.values
    for want_kv, got_kv in zip(sent.kvlist_value.values, got, strict=True):
        assert got_kv.key == want_kv.key
        if got_kv.key != "patient":
            assert got_kv.value == want_kv.value, got_kv.key  # same oneof case and value
    assert python(out.body)["patient"] == {"ssn": "[REDACTED:SSN]"}


def test_a_masked_int_becomes_a_string_and_bytes_stay_opaque(state_dir: Path) -> None:
    masker = build_masker(POLICY + "  - {path: secret, action: redact}\n", state_dir)
    body = one_body(masker, {"age": 93, "patient": {"zip_bytes": b"02139"}, "secret": b"x",
                             "visits": 3})
    assert body["age"] == "90+"  # a generalized age: an int masked into a string
    assert body["patient"]["zip_bytes"] == b"02139"  # bytes are not scanned
    assert body["secret"] == "[REDACTED:SECRET]"  # a mapped rule's output replaces bytes
    assert body["visits"] == 3


def test_duplicate_kvlist_keys_last_one_wins(masker: Masker) -> None:
    sent = AnyValue(kvlist_value=KeyValueList(values=[
        KeyValue(key="a", value=any_value("first")),
        KeyValue(key="b", value=any_value(1)),
        KeyValue(key="a", value=any_value("second")),
    ]))
    result = transform_export(masker, request(resource(scope(LogRecord(body=sent)))), LIMITS)
    (out,) = all_records(forwarded(result))
    assert [(kv.key, python(kv.value)) for kv in out.body.kvlist_value.values] == [
        ("a", "second"), ("b", 1)]


def test_a_key_without_value_is_none(state_dir: Path) -> None:
    masker = build_masker(POLICY + "  - {path: empty, action: redact}\n", state_dir)
    body = AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="empty"),
                                                      KeyValue(key="msg", value=any_value("x"))]))
    data = request(resource(scope(LogRecord(body=body))))
    (out,) = all_records(forwarded(transform_export(masker, data, LIMITS)))
    assert out.body == body  # null stays null: redact passes it through


# --- rejections -----------------------------------------------------------------------------


def tagged(n: int, zip_code: str = "02139") -> LogRecord:
    return record({"patient": {"address": {"zip": zip_code}}, "n": n}, {"n": n})


def test_rejections_by_flat_index_across_resources_and_scopes(masker: Masker) -> None:
    data = request(
        resource(scope(tagged(0), tagged(1)), scope(tagged(2, "not a zip"))),
        resource(scope(tagged(3), tagged(4, "not a zip"), tagged(5)), scope(tagged(6))),
    )
    result = transform_export(masker, data, LIMITS)
    rejection = Rejection("operator_error", "patient.address.zip")
    assert result.rejections == [(2, rejection), (4, rejection)]
    assert result.accepted == 5
    out = forwarded(result)
    layout = [[[python(r.body)["n"] for r in sl.log_records] for sl in rl.scope_logs]
              for rl in out.resource_logs]
    assert layout == [[[0, 1]], [[3, 5], [6]]]  # the scope left empty is gone
    assert all(python(r.body)["patient"]["address"]["zip"] == "021"
               for r in all_records(out))


def test_a_rejected_resource_rejects_all_its_records(masker: Masker) -> None:
    data = request(
        resource(scope(tagged(0)), scope(tagged(1), tagged(2)),
                 attributes={"site_zip": "not a zip"}),
        resource(scope(tagged(3)), attributes={"site_zip": "02139"}),
    )
    result = transform_export(masker, data, LIMITS)
    rejection = Rejection("operator_error", "resource.site_zip")
    assert result.rejections == [(0, rejection), (1, rejection), (2, rejection)]
    assert result.accepted == 1
    (rl,) = forwarded(result).resource_logs
    assert attributes_of(rl.resource.attributes) == {"site_zip": "021"}
    assert [python(r.body)["n"] for r in rl.scope_logs[0].log_records] == [3]


def test_a_rejected_scope_rejects_its_records_only(masker: Masker) -> None:
    bad = scope(tagged(1), tagged(2))
    bad.scope.attributes.extend(key_values({"tenant_zip": "nope"}))
    data = request(resource(scope(tagged(0)), bad, scope(tagged(3, "not a zip"), tagged(4))))
    result = transform_export(masker, data, LIMITS)
    assert result.rejections == [
        (1, Rejection("operator_error", "scope.attributes.tenant_zip")),
        (2, Rejection("operator_error", "scope.attributes.tenant_zip")),
        (3, Rejection("operator_error", "patient.address.zip")),
    ]
    assert [python(r.body)["n"] for r in all_records(forwarded(result))] == [0, 4]


def test_everything_rejected_forwards_nothing(masker: Masker) -> None:
    result = transform_export(masker, request(resource(scope(tagged(0, "bad")))), LIMITS)
    assert result == OtlpResult(b"", 0, [(0, Rejection("operator_error", "patient.address.zip"))])


def test_invalid_utf8_fails_the_whole_request(masker: Masker) -> None:
    """protobuf refuses a string that is not UTF-8; a conforming client never sends one."""
    good = record({"msg": "fine"})
    for bad in (record({"msg": "MARK"}), record("x", {"MARK": 1}), record("x", {"k": "MARK"})):
        data = request(resource(scope(good, bad))).replace(b"MARK", b"M\xffRK")
        with pytest.raises(RequestError) as info:
            transform_export(masker, data, LIMITS)
        assert info.value.status == "INVALID_ARGUMENT"
        assert "RK" not in str(info.value) and "msg" not in str(info.value)


def test_string_table_values_are_unsupported(masker: Masker) -> None:
    body = AnyValue(kvlist_value=KeyValueList(values=[
        KeyValue(key="s", value=AnyValue(string_value_strindex=3))]))
    data = request(resource(scope(record("ok"), LogRecord(body=body))))
    result = transform_export(masker, data, LIMITS)
    assert result.rejections == [(1, Rejection("unsupported_value"))]
    assert result.accepted == 1
    bad = resource(scope(record("a"), record("b")))
    bad.resource.attributes.add(key="s", value=AnyValue(string_value_strindex=1))
    result = transform_export(masker, request(bad, resource(scope(record("c")))), LIMITS)
    assert result.rejections == [(0, Rejection("unsupported_value")),
                                 (1, Rejection("unsupported_value"))]
    assert [python(r.body) for r in all_records(forwarded(result))] == ["c"]


SECRET = "123-45-6789"


@pytest.mark.parametrize("data", [
    pytest.param(b"\xff\xff\xff\xff" + SECRET.encode(), id="garbage"),
    pytest.param(request(resource(scope(record({"ssn": SECRET}))))[:-3], id="truncated"),
    # Inside a body: a string that claims more bytes than its AnyValue has.
    pytest.param(request(resource(scope(record({"ssn": SECRET})))).replace(
        b"\x0a\x0b" + SECRET.encode(), b"\x0a\x7f" + SECRET.encode()), id="body"),
])
def test_malformed_requests_are_invalid_argument(masker: Masker, data: bytes) -> None:
    with pytest.raises(RequestError) as info:
        transform_export(masker, data, LIMITS)
    assert info.value.status == "INVALID_ARGUMENT"
    assert SECRET not in str(info.value) and "ssn" not in str(info.value)


def test_too_many_records_is_resource_exhausted(masker: Masker) -> None:
    data = request(resource(scope(record("a"), record("b"))), resource(scope(record("c"))))
    with pytest.raises(RequestError) as info:
        transform_export(masker, data, Limits(max_batch_records=2))
    assert info.value.status == "RESOURCE_EXHAUSTED"
    assert str(info.value).startswith("log_records: 3 exceed the limit")
    assert transform_export(masker, data, Limits(max_batch_records=3)).accepted == 3


@pytest.mark.parametrize("data", [b"", request(), request(resource(scope()))])
def test_an_empty_request(masker: Masker, data: bytes) -> None:
    assert transform_export(masker, data, LIMITS) == OtlpResult(b"", 0, [])


def test_a_record_without_body(masker: Masker) -> None:
    data = request(resource(scope(record(None, {"user": "jdoe"}, severity_text="INFO"))))
    (out,) = all_records(forwarded(transform_export(masker, data, LIMITS)))
    assert not out.HasField("body")
    assert attributes_of(out.attributes) == {"user": "[REDACTED:USER]"}
    assert out.severity_text == "INFO"


# --- partial success message ------------------------------------------------------------------


def test_partial_success_message_names_reasons_and_rules_never_values(masker: Masker) -> None:
    strindex = LogRecord(body=AnyValue(kvlist_value=KeyValueList(values=[
        KeyValue(key="msg", value=AnyValue(string_value_strindex=7))])))
    data = request(resource(scope(
        tagged(0, "not a zip 123-45-6789"), strindex, tagged(2),
        tagged(3, "zip of jane@example.org"),
    )))
    result = transform_export(masker, data, LIMITS)
    message = partial_success_message(result.rejections)
    assert message == ("3 log records rejected: operator_error x2 (rule patient.address.zip), "
                       "unsupported_value x1")
    for value in ("not a zip", "123-45-6789", "jane@example.org", "msg"):
        assert value not in message
    assert partial_success_message([]) == ""
    assert partial_success_message([(0, Rejection("too_deep"))]) == (
        "1 log record rejected: too_deep x1")


# --- the same policy masks Fluent Bit's OTLP exactly like the native payload -----------------


Outcome = tuple[list[tuple[int, str, str]], list[Any]]


def native_and_otlp(masker_native: Masker, masker_otlp: Masker,
                    payloads: list[dict[str, Any]]) -> tuple[Outcome, Outcome]:
    """(rejections, masked records) of both paths for the same records."""
    native = pb.TransformRequest()
    for i, payload in enumerate(payloads):
        native.records.add(payload=orjson.dumps(payload), id=str(i))
    reply = pb.TransformResponse.FromString(
        transform_request(masker_native, native.SerializeToString(), LIMITS))
    # Fluent Bit: the whole record as a key/value-list body, no attributes, empty resource.
    otlp = request(ResourceLogs(scope_logs=[scope(*(record(p) for p in payloads))]))
    result = transform_export(masker_otlp, otlp, LIMITS)
    return (
        ([(r.index, r.reason, r.rule) for r in reply.rejections],
         [orjson.loads(r.payload) for r in reply.records]),
        ([(i, r.reason, r.rule) for i, r in result.rejections],
         [python(r.body) for r in all_records(forwarded(result))] if result.forward else []),
    )


def test_fluent_bit_body_masks_like_the_native_payload(state_dir: Path) -> None:
    policy = POLICY + "  - {path: http.client_ip, action: hmac}\n"
    masker_native = build_masker(policy, state_dir, roots=("payload", "attributes"))
    masker_otlp = build_masker(policy, state_dir)
    records = generate_records(200, seed=11)
    native, otlp = native_and_otlp(masker_native, masker_otlp, records)
    assert native == otlp
    rejections, masked = otlp
    assert rejections == [] and len(masked) == len(records)
    assert [r["patient"]["ssn"] for r in masked] == ["[REDACTED:SSN]"] * len(records)
    assert all(r["patient"]["mrn"].startswith("hmac:") for r in masked)
    assert all(r["http"]["client_ip"].startswith("hmac:") for r in masked)
    assert all(r["patient"]["name"] == "[REDACTED:NAME]" for r in masked)  # a hint


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
    | st.sampled_from(["123-45-6789", "jane@example.org", "call 212-555-0188", "02139"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["ssn", "zip", "msg", "patient", "a", "b", "n", "ip",
                                       "name", "tags"]) | st.text(max_size=8),
                      children, max_size=5),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def both_maskers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Masker, Masker]:
    policy = POLICY + "  - {path: \"tags[*]\", action: hmac}\n"
    state_dir = tmp_path_factory.mktemp("state")
    return (build_masker(policy, state_dir, ("payload", "attributes")),
            build_masker(policy, state_dir))


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6),
                         min_size=1, max_size=4))
def test_any_payload_masks_alike_on_both_paths(both_maskers: tuple[Masker, Masker],
                                               payloads: list[dict[str, Any]]) -> None:
    native, otlp = native_and_otlp(*both_maskers, payloads)
    assert native == otlp


SAMPLE = request(
    resource(scope(record({"patient": {"ssn": "123-45-6789", "zip": "02139"}, "n": [1, 2.5, True],
                           "b": b"\x01", "msg": "call 212-555-0188"}, {"user": "jdoe"},
                          **FIELDS)),
             attributes={"service.name": "ehr", "site_zip": "02139"}),
    resource(scope(record("SSN 219-09-9999"), record(None, {"k": {"x": [None, "y"]}}))),
)


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)),
                      min_size=1, max_size=4),
       cut=st.integers(0, len(SAMPLE)))
def test_corrupted_requests_fail_cleanly_or_forward_valid_otlp(
        both_maskers: tuple[Masker, Masker], edits: list[tuple[int, int]], cut: int) -> None:
    """Whatever the bytes: a RequestError, or a forward the official parser accepts."""
    data = bytearray(SAMPLE)
    for at, byte in edits:
        data[at] = byte
    try:
        result = transform_export(both_maskers[1], bytes(data[:cut] if cut % 7 == 0 else data),
                                  LIMITS)
    except RequestError as exc:
        assert exc.status == "INVALID_ARGUMENT"
        return
    assert len(all_records(forwarded(result)) if result.forward else []) == result.accepted
    sent = ExportLogsServiceRequest.FromString(bytes(data[:cut] if cut % 7 == 0 else data))
    assert result.accepted + len(result.rejections) == len(all_records(sent))
