"""Fuzzing with hypothesis, in-process: the native, OTLP and Vector decoders (random bytes,
mutated requests, and structured-random messages built from the real protobuf classes),
the policy loader (YAML-ish text, structured dicts dumped to YAML), the path parser and the
scanner (random unicode).

Properties:

* nothing raises but the documented errors: RequestError (a CallError with a deliberate
  status) from the decoders, PolicyError from the loader, PathError from the path parser,
  nothing at all from the scanner; a compiled policy masks anything without raising;
* nothing hangs: a hypothesis deadline per example, and a hard per-example time limit;
* nothing is lost: every record in is out (masked) or rejected, by index;
* nothing leaks: with the default safe-harbor policy (`unmapped_strings: scan`), PHI
  seeded into the fields a rule, hint or the scanner covers never comes out.

CI runs a short profile (< 30 s for the file); `HYPOTHESIS_PROFILE=long` runs many more
examples (docs/FUZZING.md).
"""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from phimask._gen.phimask.v1 import transform_pb2 as pb
from phimask._gen.vector import event_pb2 as ev
from phimask._gen.vector import vector_pb2
from phimask.adapters.native import Limits, RequestError, transform_request
from phimask.adapters.otlp import OTLP_ROOTS, transform_export
from phimask.adapters.vector import VECTOR_ROOTS, transform_push
from phimask.detect import BUILTIN_NAMES, PatternError, Scanner, available_engines
from phimask.operators import ACTIONS
from phimask.pipeline import Masker
from phimask.policy import PolicyError, compile_policy, default_policy_text, load_yaml
from phimask.policy.hints import hint_for
from phimask.policy.paths import AnyIndex, AnyKey, Key, PathError, parse_path
from tests.conftest import fixed_keyring

# --- profiles --------------------------------------------------------------------------------

settings.register_profile(
    "phimask-fuzz-ci", max_examples=100, deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "phimask-fuzz-long", max_examples=20_000, deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = os.environ.get("HYPOTHESIS_PROFILE", "") == "long"
FUZZ = settings(settings.get_profile("phimask-fuzz-long" if LONG else "phimask-fuzz-ci"))
if os.environ.get("FUZZ_EXAMPLES"):  # any count, e.g. FUZZ_EXAMPLES=3000 for a soak
    FUZZ = settings(FUZZ, max_examples=int(os.environ["FUZZ_EXAMPLES"]))
# A decorator for the cheapest targets: more examples for the same time.
FUZZ_MORE = FUZZ if LONG else settings(FUZZ, max_examples=200)
EXAMPLE_SECONDS = 30.0 if LONG else 10.0  # hard limit for one example: a hang, not slowness

LIMITS = Limits(max_batch_records=1000)
SSN, EMAIL, SSN_INT = "123-45-6789", "ann.lee@example.org", 123456789
SEEDS = (SSN, EMAIL)


class Hang(BaseException):
    """An example ran past EXAMPLE_SECONDS. BaseException: no `except Exception` in the
    code under test may swallow it."""


@contextmanager
def time_limit(seconds: float = EXAMPLE_SECONDS) -> Iterator[None]:
    """Interrupt the example after `seconds` (SIGALRM; the main thread only, else no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"example ran over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- maskers (default safe-harbor policy) ----------------------------------------------------


@dataclass(frozen=True)
class Maskers:
    native: Masker
    otlp: Masker
    vector: Masker


_MASKERS: list[Maskers] = []


def maskers() -> Maskers:
    """Built once for the module (hypothesis reruns a test body many times)."""
    if not _MASKERS:
        import tempfile

        state = Path(tempfile.mkdtemp(prefix="phimask-fuzz-"))

        def build(roots: tuple[str, ...]) -> Masker:
            plan = compile_policy(load_yaml(default_policy_text(), "default"), roots=roots,
                                  state_dir=state, keys=fixed_keyring())
            return Masker(plan, Scanner.build(plan.detectors))

        _MASKERS.append(Maskers(build(("payload", "attributes")), build(OTLP_ROOTS),
                                build(VECTOR_ROOTS)))
    return _MASKERS[0]


# --- values ----------------------------------------------------------------------------------

HINTED = ["ssn", "mrn", "dob", "age", "zip", "name", "patient_name", "email", "phone", "fax",
          "address", "city", "ip", "url", "account_number", "member_id", "admission_date",
          "birth_date", "vin", "device_id", "license"]
PLAIN = ["msg", "note", "status", "service", "level", "items", "detail", "tags", "k", ""]


def _not_kept(key: str) -> bool:
    # Top-level keep hints (ts, time, trace_id, ...) keep everything beneath them by design
    # (and see test_top_level_keep_hint_does_not_keep_nested_free_text): no PHI seeded there.
    hint = hint_for(key, True)
    return hint is None or hint.action != "keep"


keys = st.one_of(st.sampled_from(HINTED + PLAIN), st.text(max_size=12)).filter(_not_kept)
words = st.text(max_size=20)
# PHI in free text: spaces around it, so it is a token of its own as in a log line.
seeded = st.builds(lambda a, phi, b: f"{a} {phi} {b}", words, st.sampled_from(SEEDS), words)
int64 = st.integers(-(1 << 63), (1 << 63) - 1)


def scalars(*, floats: bool, finite: bool) -> st.SearchStrategy[Any]:
    options: list[st.SearchStrategy[Any]] = [
        st.none(), st.booleans(), int64, st.just(SSN_INT), st.text(max_size=30), seeded]
    if floats:
        options.append(st.floats(allow_nan=not finite, allow_infinity=not finite))
    return st.one_of(*options)


def trees(leaves: st.SearchStrategy[Any], max_leaves: int = 20) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
        max_leaves=max_leaves)


json_values = trees(scalars(floats=True, finite=True))
json_objects = st.dictionaries(keys, json_values, max_size=6)


def seeds_in(value: Any, path: str = "") -> Iterator[str]:
    """The path of every seeded PHI value left in `value` (strings, ints; not bytes)."""
    if isinstance(value, str):
        if any(s in value for s in SEEDS):
            yield path
    elif type(value) is int:
        if value == SSN_INT:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from seeds_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from seeds_in(item, f"{path}[{index}]")


def assert_no_seeds(value: Any) -> None:
    leaks = list(seeds_in(value))
    assert not leaks, f"seeded PHI left at {leaks}"


# --- native ----------------------------------------------------------------------------------


@st.composite
def native_requests(draw: st.DrawFn) -> tuple[bytes, int]:
    records = []
    for i in range(draw(st.integers(0, 5))):
        raw = draw(st.one_of(
            json_objects.map(orjson.dumps),  # mostly objects
            json_objects.map(orjson.dumps),
            json_values.map(orjson.dumps),  # any JSON root
            st.binary(max_size=40),  # not JSON, not UTF-8
        ))
        attributes = draw(st.dictionaries(keys, st.one_of(st.text(max_size=20), seeded),
                                          max_size=3))
        records.append(pb.Record(payload=raw, attributes=attributes, id=f"r{i}"))
    return pb.TransformRequest(records=records).SerializeToString(), len(records)


def check_native(data: bytes, count: int | None) -> None:
    try:
        with time_limit():
            reply = transform_request(maskers().native, data, LIMITS)
    except RequestError as exc:
        assert exc.status in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED")
        assert count is None, "a request we built is valid"
        return
    response = pb.TransformResponse.FromString(reply)
    if count is None:
        count = len(pb.TransformRequest.FromString(data).records)
    indices = sorted(r.index for r in response.rejections)
    assert len(set(indices)) == len(indices) and all(0 <= i < count for i in indices)
    assert len(response.records) + len(response.rejections) == count
    for record in response.records:
        assert_no_seeds(orjson.loads(record.payload))
        assert_no_seeds(dict(record.attributes))


@FUZZ
@given(request=native_requests())
def test_native_structured(request: tuple[bytes, int]) -> None:
    check_native(*request)


@FUZZ_MORE
@given(data=st.binary(max_size=300))
def test_native_random_bytes(data: bytes) -> None:
    check_native(data, None)


@FUZZ
@given(request=native_requests(), parts=st.integers(2, 8))
def test_native_parts_concatenate_to_the_whole(request: tuple[bytes, int], parts: int) -> None:
    """With several idle workers a request is masked in slices whose replies are
    concatenated (workers.BatchRunner.run): that must be the reply to the whole."""
    data, _ = request
    masker = maskers().native
    with time_limit():
        whole = pb.TransformResponse.FromString(transform_request(masker, data, LIMITS))
        joined = pb.TransformResponse.FromString(b"".join(
            transform_request(masker, data, LIMITS, (i, parts)) for i in range(parts)))
    assert [(r.id, r.payload, dict(r.attributes)) for r in joined.records] == [
        (r.id, r.payload, dict(r.attributes)) for r in whole.records]
    assert [(r.index, r.reason, r.rule, r.id) for r in joined.rejections] == [
        (r.index, r.reason, r.rule, r.id) for r in whole.rejections]
    assert joined.policy_version == whole.policy_version


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, byte) edits: 0 flip a byte, 1 insert one, 2 delete one, 3 cut."""
    out = bytearray(data)
    for kind, position, byte in edits:
        if not out:
            break
        at = position % len(out)
        if kind == 0:
            out[at] ^= byte or 1
        elif kind == 1:
            out.insert(at, byte)
        elif kind == 2:
            del out[at]
        else:
            del out[at:]
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)),
                 min_size=1, max_size=4)


@FUZZ
@given(request=native_requests(), edits=edits)
def test_native_mutated(request: tuple[bytes, int], edits: list[tuple[int, int, int]]) -> None:
    check_native(mutate(request[0], edits), None)


# --- OTLP ------------------------------------------------------------------------------------

otlp_leaves = st.one_of(scalars(floats=True, finite=False), st.binary(max_size=20))
otlp_values = trees(otlp_leaves)
_STRINDEX = "string_value_strindex" in AnyValue.DESCRIPTOR.fields_by_name


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
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(v))
                                       for k, v in value.items())
    elif isinstance(value, list):
        out.array_value.SetInParent()
        out.array_value.values.extend(any_value(v) for v in value)
    return out


def attributes_of(draw: st.DrawFn) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v))
            for k, v in draw(st.dictionaries(keys, otlp_values, max_size=3)).items()]


@st.composite
def otlp_requests(draw: st.DrawFn) -> tuple[bytes, int]:
    request = ExportLogsServiceRequest()
    count = 0
    for _ in range(draw(st.integers(0, 2))):
        rl = ResourceLogs()
        rl.resource.attributes.extend(attributes_of(draw))
        for _ in range(draw(st.integers(0, 2))):
            sl = ScopeLogs()
            sl.scope.name = draw(st.one_of(st.text(max_size=10), seeded))
            sl.scope.version = draw(st.text(max_size=5))
            sl.scope.attributes.extend(attributes_of(draw))
            for _ in range(draw(st.integers(0, 4))):
                record = LogRecord(attributes=attributes_of(draw),
                                   severity_text=draw(st.text(max_size=6)),
                                   time_unix_nano=draw(st.integers(0, (1 << 64) - 1)))
                if draw(st.booleans()):
                    record.body.CopyFrom(any_value(draw(otlp_values)))
                elif _STRINDEX and draw(st.integers(0, 9)) == 0:
                    record.body.string_value_strindex = draw(st.integers(0, 100))
                sl.log_records.append(record)
                count += 1
            rl.scope_logs.append(sl)
        request.resource_logs.append(rl)
    return request.SerializeToString(), count


def python_of(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "kvlist_value":
        return {kv.key: python_of(kv.value) for kv in value.kvlist_value.values}
    if which == "array_value":
        return [python_of(v) for v in value.array_value.values]
    if which == "bytes_value":
        return None  # bytes are not scanned (documented): never seeded
    return None if which is None else getattr(value, which)


def check_otlp(data: bytes, count: int | None) -> None:
    try:
        with time_limit():
            result = transform_export(maskers().otlp, data, LIMITS)
    except RequestError as exc:
        assert exc.status in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED")
        assert count is None, "a request we built is valid"
        return
        return
    if count is None:
        request = ExportLogsServiceRequest.FromString(data)
        count = sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)
    indices = [i for i, _ in result.rejections]
    assert len(set(indices)) == len(indices) and all(0 <= i < count for i in indices)
    assert result.accepted + len(result.rejections) == count
    forwarded = ExportLogsServiceRequest.FromString(result.forward)
    out = 0
    for rl in forwarded.resource_logs:
        assert_no_seeds({kv.key: python_of(kv.value) for kv in rl.resource.attributes})
        for sl in rl.scope_logs:
            assert_no_seeds([sl.scope.name, sl.scope.version])
            assert_no_seeds({kv.key: python_of(kv.value) for kv in sl.scope.attributes})
            for record in sl.log_records:
                out += 1
                assert_no_seeds(python_of(record.body))
                assert_no_seeds({kv.key: python_of(kv.value) for kv in record.attributes})
    assert out == result.accepted


@FUZZ
@given(request=otlp_requests())
def test_otlp_structured(request: tuple[bytes, int]) -> None:
    check_otlp(*request)


@FUZZ_MORE
@given(data=st.binary(max_size=300))
def test_otlp_random_bytes(data: bytes) -> None:
    check_otlp(data, None)


@FUZZ
@given(request=otlp_requests(), edits=edits)
def test_otlp_mutated(request: tuple[bytes, int], edits: list[tuple[int, int, int]]) -> None:
    check_otlp(mutate(request[0], edits), None)


# --- Vector ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    seconds: int
    nanos: int


stamps = st.builds(Stamp, st.one_of(st.integers(0, 4_000_000_000), int64),
                   st.one_of(st.integers(0, 999_999_999), st.integers(-(1 << 31), (1 << 31) - 1)))
vector_leaves = st.one_of(scalars(floats=True, finite=False), st.binary(max_size=20), stamps)
vector_values = trees(vector_leaves)


def vector_value(value: Any, out: ev.Value) -> None:
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
    elif isinstance(value, Stamp):
        out.timestamp.seconds, out.timestamp.nanos = value.seconds, value.nanos
    elif value is None:
        out.null = ev.NULL_VALUE
    elif isinstance(value, dict):
        out.map.SetInParent()
        for key, item in value.items():
            vector_value(item, out.map.fields[key])
    else:
        out.array.SetInParent()
        for item in value:
            vector_value(item, out.array.items.add())


@st.composite
def vector_requests(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """(request, log events + empty wrappers, metric events)"""
    request = vector_pb2.PushEventsRequest()
    logs = metrics = 0
    for _ in range(draw(st.integers(0, 5))):
        wrapper = request.events.add()
        kind = draw(st.integers(0, 9))
        if kind == 0:
            wrapper.metric.MergeFromString(b"\x0a\x05count\x12\x02\x08\x07")
            metrics += 1
            continue
        logs += 1
        if kind == 1:
            continue  # no event at all: unsupported_event
        payload = draw(st.one_of(st.dictionaries(keys, vector_values, max_size=5),
                                 vector_values))
        if isinstance(payload, dict):
            wrapper.log.SetInParent()
            for key, item in payload.items():
                vector_value(item, wrapper.log.fields[key])
        else:
            vector_value(payload, wrapper.log.value)
            wrapper.log.fields["."].null = ev.NULL_VALUE
        wrapper.log.metadata_full.source_type = "fuzz"
    return request.SerializeToString(), logs, metrics


def python_of_vector(value: ev.Value) -> Any:
    kind = value.WhichOneof("kind")
    assert kind is not None, "every Value written has a kind"
    if kind == "raw_bytes":
        return value.raw_bytes.decode("utf-8", "surrogateescape")
    if kind == "map":
        return {k: python_of_vector(v) for k, v in value.map.fields.items()}
    if kind == "array":
        return [python_of_vector(v) for v in value.array.items]
    if kind == "float":
        assert math.isfinite(value.float), "Vector crashes on NaN and infinities"
    return None if kind in ("null", "timestamp") else getattr(value, kind)


def check_vector(data: bytes, counts: tuple[int, int] | None) -> None:
    try:
        with time_limit():
            result = transform_push(maskers().vector, data, LIMITS)
    except RequestError as exc:
        assert exc.status in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED")
        assert counts is None, "a request we built is valid"
        return
    indices = [i for i, _ in result.rejections]
    assert len(set(indices)) == len(indices)
    if counts is not None:
        logs, metrics = counts
        assert result.accepted + len(result.rejections) == logs
        assert result.passed_through == metrics
    forwarded = vector_pb2.PushEventsRequest.FromString(result.forward)
    out = [e for e in forwarded.events if e.WhichOneof("event") == "log"]
    assert len(out) == result.accepted
    assert len(forwarded.events) == result.accepted + result.passed_through
    for wrapper in out:
        log = wrapper.log
        if log.HasField("value"):
            assert_no_seeds(python_of_vector(log.value))
        assert_no_seeds({k: python_of_vector(v) for k, v in log.fields.items()})


@FUZZ
@given(request=vector_requests())
def test_vector_structured(request: tuple[bytes, int, int]) -> None:
    check_vector(request[0], request[1:])


@FUZZ_MORE
@given(data=st.binary(max_size=300))
def test_vector_random_bytes(data: bytes) -> None:
    check_vector(data, None)


@FUZZ
@given(request=vector_requests(), edits=edits)
def test_vector_mutated(request: tuple[bytes, int, int],
                        edits: list[tuple[int, int, int]]) -> None:
    check_vector(mutate(request[0], edits), None)


# --- the path parser -------------------------------------------------------------------------

path_text = st.one_of(
    st.text(max_size=30),
    st.text(alphabet='ab.[]*"\\ _-/', max_size=30),
    st.lists(st.sampled_from(["a", "b1", "*", "[*]", ".", '"x.y"', '"', "\\", "[", "]", " ",
                              "[0]", '""', "é", "\x00"]), max_size=12).map("".join),
)


@FUZZ_MORE
@given(text=path_text)
def test_path_parser(text: str) -> None:
    try:
        with time_limit():
            segments = parse_path(text)
    except PathError as exc:
        assert str(exc)
        return
    assert segments and isinstance(segments[0], Key | AnyKey)
    assert all(isinstance(s, Key | AnyKey | AnyIndex) for s in segments)
    assert all(s.name for s in segments if isinstance(s, Key))


# --- the policy loader -----------------------------------------------------------------------

YAML_TOKENS = [
    "version", "1", "2", ":", ": ", " ", "\n", "  ", "- ", "fields", "path", "action",
    *ACTIONS, "{", "}", "[", "]", ",", "'", '"', "&a ", "*a", "!!str ", "!!map ", "# c",
    "? ", "|", ">", "profile", "safe-harbor", "none", "detectors", "custom", "pattern",
    "name", "label", "disabled", "ssn", "integrity", "mode", "require", "on_error",
    "quarantine", "unmapped_strings", "scan", "keep", "patient.ssn", "notes[*].text", "*",
    "\t", "~", "null", "true", "0x1F", "1e3", ".inf", "-", "<<", "---", "...", "2024-01-02",
    "kind", "as_of", "length", "mask", "table", "\\d{6}", "(", ")",
]
yaml_ish = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(st.sampled_from(YAML_TOKENS), st.text(max_size=4)), max_size=40)
    .map("".join),
)
OPTIONS = ["text", "type", "length", "prefix", "alphabet", "min_length", "tweak", "shape",
           "domain", "keep", "mask", "kind", "as_of", "table", "suffix", "bogus"]
option_values = st.one_of(st.integers(-5, 80), st.text(max_size=8), st.booleans(), st.none(),
                          st.sampled_from(["digits", "alnum", "tok", "auto", "age", "date",
                                           "birth_date", "2000", "2010", "union", "*", "x",
                                           "2024-06-01", "hmac:"]),
                          st.lists(st.integers(0, 3), max_size=2))
regexes = st.one_of(st.sampled_from([r"EMP-\d{6}", r"MRN[-:# ]*\d{6,10}", r"(a+)+$", "(",
                                     "", r"\bX\d+", r"[A-Z]{2}\d{4}", ".*", r"\d"]),
                    st.text(alphabet=r"ab\d{}[]()+*?|^$.-,0123456789", max_size=12))


@st.composite
def policy_dicts(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        doc["version"] = draw(st.sampled_from([1, 1, 1, 2, "1", None]))
    for key, good in (("profile", ["safe-harbor", "none"]), ("on_error", ["reject"]),
                      ("unmapped_strings", ["scan", "keep"])):
        if draw(st.booleans()):
            doc[key] = draw(st.one_of(st.sampled_from(good), st.text(max_size=5)))
    if draw(st.integers(0, 3)) == 0:
        doc["integrity"] = draw(st.fixed_dictionaries({}, optional={
            "mode": st.sampled_from(["off", "if_present", "require", "bogus", False]),
            "accept": st.lists(st.sampled_from(["hmac-sha256", "ed25519", "sha256", "md5"]),
                               max_size=3),
            "sign_output": st.sampled_from([False, "yes"]),
            "signature_attribute": st.text(max_size=5),
        }))
    if draw(st.integers(0, 2)) == 0:
        doc["detectors"] = draw(st.fixed_dictionaries({}, optional={
            "mrn_pattern": regexes,
            "disabled": st.lists(st.sampled_from(["ssn", "phone", "email", "vin", "x"]),
                                 max_size=3),
            "custom": st.lists(st.fixed_dictionaries(
                {"name": st.sampled_from(["employee_id", "x", "ssn", ""]), "pattern": regexes},
                optional={"label": st.one_of(st.text(max_size=6), st.integers())}),
                max_size=2),
        }))
    fields: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 5))):
        rule: dict[str, Any] = {
            "path": draw(st.one_of(path_text, st.sampled_from(
                ["patient.ssn", "a.b", "notes[*].text", "attributes.user", "payload.x", "*",
                 "a.*.c"]))),
            "action": draw(st.one_of(st.sampled_from(ACTIONS), st.text(max_size=6))),
        }
        for option in draw(st.lists(st.sampled_from(OPTIONS), max_size=2, unique=True)):
            rule[option] = draw(option_values)
        fields.append(rule)
    empty_fields = draw(st.booleans())  # `fields: []` written out
    if fields or empty_fields:
        doc["fields"] = fields
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.text(max_size=6))] = draw(option_values)
    return doc


# Records every compiled policy must mask without raising (a rejection is fine).
CORPUS: list[dict[str, Any]] = [
    {"patient": {"ssn": SSN, "name": "Ann Lee", "dob": "1961-04-12", "age": 93, "zip": "02139",
                 "mrn": "MRN-00123456", "phone": "617-555-0142"}, "a": {"b": SSN, "c": [1, None]},
     "notes": [{"text": f"mail {EMAIL}"}, {"text": 123456789}], "x": 1.5, "user": True},
    {"a": [[{"b": "x"}]], "payload": {"x": "1e3"}, "": "", "notes": "not a list"},
    {"patient": {"ssn": 123456789, "dob": 1961, "zip": 2139, "phone": None}, "a": {"b": -0.0}},
]


def check_compiled(text: str) -> None:
    try:
        plan = compile_policy(load_yaml(text, "fuzz.yaml"), state_dir=_state_dir(),
                              keys=fixed_keyring())
    except PolicyError as exc:
        assert str(exc).startswith("fuzz.yaml")
        return
        return
    try:
        scanner = Scanner.build(plan.detectors, engine="re")
        custom = [d for d in plan.detectors if d.name not in _BUILTIN]
        if custom and "hyperscan" in available_engines():
            Scanner.build(custom, engine="hyperscan").scan_many([f"EMP-123456 {SSN} ab12"])
    except PatternError:
        return  # documented for building a scanner (runtime.build_masker)
    masker = Masker(plan, scanner)
    docs: list[Any] = [{"payload": orjson.loads(orjson.dumps(record)),
                        "attributes": {"user": "ann", "k": SSN}} for record in CORPUS]
    outcomes = masker.mask_batch(docs)
    assert len(outcomes) == len(docs)


_BUILTIN = set(BUILTIN_NAMES)
_STATE: list[Path] = []


def _state_dir() -> Path:
    if not _STATE:
        import tempfile

        _STATE.append(Path(tempfile.mkdtemp(prefix="phimask-fuzz-policy-")))
    return _STATE[0]


@FUZZ
@given(text=yaml_ish)
def test_policy_loader_random_text(text: str) -> None:
    with time_limit():
        check_compiled(text)


@FUZZ
@given(doc=policy_dicts())
def test_policy_loader_structured(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    with time_limit():
        check_compiled(text)




@pytest.mark.parametrize("text", [
    "? [a, b]\n: c\nversion: 1\n",  # unhashable key: ConstructorError
    "version: 1\ndescription: !!python/object:os.system x\n",  # unknown tag: ConstructorError
    "version: 1\n<<: 5\n",  # a merge of a scalar: ConstructorError
    "version: 1\ndescription: 2024-13-01\n",  # an impossible date: ValueError
    "version: 1\nfields: [{path: a, action: generalize, as_of: 2024-02-30}]\n",  # ValueError
    "version: !!int abc\n",  # ValueError
    "version: 1\ndescription: !!binary aGVsbG8=\n",  # bytes: TypeError in policy_version
    'version: 1\ndescription: "\\ud800"\n',  # a lone surrogate: TypeError
    "version: 1\nfields: [{path: a, action: partial, keep: 100000000000000000000}]\n",
    "version: 1\ndescription: " + "[" * 5000 + "]" * 5000 + "\n",  # RecursionError
], ids=["unhashable-key", "unknown-tag", "merge-scalar", "bad-date", "bad-as_of", "bad-int",
        "binary", "surrogate", "huge-int", "deep"])
def test_policy_loader_raises_only_policy_error(text: str) -> None:
    with pytest.raises(PolicyError):
        compile_policy(load_yaml(text, "p.yaml"), state_dir=_state_dir(), keys=fixed_keyring())


def test_policy_loader_alias_bomb_is_refused_quickly() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(7)) + "version: 1\n"
    with time_limit(1.0), pytest.raises(PolicyError):
        compile_policy(load_yaml(text, "p.yaml"), state_dir=_state_dir(), keys=fixed_keyring())


# --- the scanner -----------------------------------------------------------------------------

scan_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="0123456789-@. ()+/:abcdefxyzMRN\u00e9\u0663\u2028\U0001f600",
            max_size=200),
)


def _scanners() -> list[Scanner]:
    detectors = maskers().native.plan.detectors
    return [Scanner.build(detectors, engine=e) for e in available_engines()]


SCANNERS: list[Scanner] = []


@FUZZ_MORE
@given(texts=st.lists(scan_text, min_size=1, max_size=4),
       seeds=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(SEEDS), st.integers(0, 200)),
                      max_size=3))
def test_scanner(texts: list[str], seeds: list[tuple[int, str, int]]) -> None:
    if not SCANNERS:
        SCANNERS.extend(_scanners())
    texts = list(texts)
    for which, seed, at in seeds:  # PHI at a random place, a token of its own
        i = which % len(texts)
        cut = min(at, len(texts[i]))
        texts[i] = f"{texts[i][:cut]} {seed} {texts[i][cut:]}"
    results = []
    with time_limit():
        for scanner in SCANNERS:
            found = scanner.scan_many(texts)
            redacted = scanner.redact_many(texts, lambda m: f"[{m.detector.label}]")
            results.append(found)
            for text, matches, out in zip(texts, found, redacted, strict=True):
                ends = 0
                for m in matches:  # sorted, non-overlapping, inside the text
                    assert ends <= m.start < m.end <= len(text)
                    ends = m.end
                if not matches:
                    assert out is text
                for seed in SEEDS:
                    assert seed not in out or _kept_by_context(text, seed), (text, out)
    assert all(r == results[0] for r in results), "the engines disagree"


def _kept_by_context(text: str, seed: str) -> bool:
    """Whether `seed` in `text` is legitimately not a match: the detectors' boundaries say a
    seed glued to more digits or address characters is part of a longer token."""
    start = text.find(seed)
    while start >= 0:
        before = text[start - 1] if start else " "
        after = text[start + len(seed)] if start + len(seed) < len(text) else " "
        if before.isspace() and after.isspace():
            return False
        start = text.find(seed, start + 1)
    return True


def test_profiles_are_registered() -> None:
    """CI stays short; the long profile is there for soak runs (docs/FUZZING.md)."""
    assert settings.get_profile("phimask-fuzz-ci").max_examples <= 200
    assert settings.get_profile("phimask-fuzz-long").max_examples >= 10_000
