"""OTLP logs: ExportLogsServiceRequest bytes in, the masked request to forward out.

No server code here, only the translation between OTLP messages and the core's
documents, with one `Masker.mask_batch` call per request (the scanner is fast only on
whole batches).

Documents (roots `OTLP_ROOTS`; `body` is the default root, so a policy's
`payload.x` or bare `x` means `body.x`):

* a LogRecord: ``{"body": <value>, "attributes": {key: value, ...}}``. `body` is
  left out when the record has no body or a body with nothing set. Fluent Bit sends
  a whole record as a key/value-list body, so `patient.ssn` finds
  `body.patient.ssn` exactly as the native adapter finds `payload.patient.ssn`.
* a ResourceLogs' resource, once for all its records: ``{"resource": {key: value}}``
  (the resource's attributes).
* a ScopeLogs' scope, once for all its records:
  ``{"scope": {"scope_name": str, "scope_version": str, "attributes": {key: value}}}``.
  Not `name`: the safe-harbor profile takes a bare `name` key for a person's name
  and would redact every instrumentation scope's name. A policy names these
  `scope.scope_name`, `scope.scope_version` and `scope.attributes.<key>`.

A resource or scope with nothing in it (no attributes; for a scope also no name and
no version) has nothing to mask and gets no document. A rejected resource or scope
document rejects every record under it with its own reason: a resource's rejection
wins over a scope's, a scope's over a record's.

Values: AnyValue string/bool/int/double -> str/bool/int/float, array -> list,
kvlist -> dict (duplicate keys: the last one wins, and only it goes back out),
bytes -> `bytes` (opaque: never scanned; a rule that maps the field replaces them
with its output), nothing set -> None. On the way back a value goes out as the case
it came in as unless the masker replaced it; None becomes an AnyValue with nothing
set. Per record, not per request: a string that is not UTF-8 rejects its record
(`invalid_utf8`), `string_value_strindex` (a profiles-only string table index)
rejects it as `unsupported_value`, nesting beyond Python's recursion rejects it as
`too_deep`. Malformed protobuf anywhere fails the whole request (INVALID_ARGUMENT).

Everything that is not masked goes out as it came: severity, timestamps, flags,
trace and span ids, event_name, dropped counts, schema_urls, entity refs and fields
this version does not know. Masked parts are rewritten on the parsed message,
rejected records deleted (with the containers they leave empty) and the message
serialized again.

Speed: the request is parsed with the OpenTelemetry descriptors re-typed so that
every AnyValue under a LogRecord, resource or scope (and every key) stays bytes, and
a small reader decodes the canonical encoding all exporters write (upb reads any
other). On the way back every entry the masker did not touch keeps its original
bytes; only changed entries are encoded and spliced in. A map or list the masker
shortened, or one that came in non-canonical, is encoded anew (fields unknown to
this version inside it are not kept).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from ..pipeline import Document, Masker, Rejection
from .native import Limits, RequestError

OTLP_ROOTS = ("body", "attributes", "resource", "scope")


@dataclass(frozen=True)
class OtlpResult:
    # A serialized ExportLogsServiceRequest with only the accepted records, masked, in
    # their original ResourceLogs/ScopeLogs; b"" when nothing was accepted.
    forward: bytes
    accepted: int  # LogRecords in `forward`
    # (flat index of the LogRecord in request order, why); never a value
    rejections: list[tuple[int, Rejection]]


# --- the wire classes -------------------------------------------------------------------


def _wire_classes() -> tuple[Any, Any]:
    """ExportLogsServiceRequest and AnyValue with AnyValues and keys kept as bytes.

    Wire-compatible with the official messages (same numbers, bytes and strings share
    a wire type), in a private descriptor pool: LogRecord.body, KeyValue.key/.value,
    ArrayValue.values and AnyValue.string_value become `bytes`. Everything else keeps
    its official type and is checked by the parser (UTF-8 of severity_text, ...).
    """
    files: list[descriptor_pb2.FileDescriptorProto] = []
    for module in (common_pb2, resource_pb2, logs_pb2, logs_service_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        files.append(proto)
    messages = {m.name: m for f in files for m in f.message_type}

    def as_bytes(message: str, name: str) -> descriptor_pb2.FieldDescriptorProto:
        (field,) = (f for f in messages[message].field if f.name == name)
        field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
        field.ClearField("type_name")
        return field

    as_bytes("AnyValue", "string_value")
    as_bytes("ArrayValue", "values")
    as_bytes("KeyValue", "key")
    as_bytes("KeyValue", "value")
    body = as_bytes("LogRecord", "body")
    # A message field has presence; so does a proto3 `optional` (a synthetic oneof).
    record = messages["LogRecord"]
    body.proto3_optional = True
    body.oneof_index = len(record.oneof_decl)
    record.oneof_decl.add(name="_body")

    pool = descriptor_pool.DescriptorPool()
    for proto in files:
        pool.Add(proto)

    def cls(module: Any, name: str) -> Any:
        return message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"{module.DESCRIPTOR.package}.{name}")
        )

    return cls(logs_service_pb2, "ExportLogsServiceRequest"), cls(common_pb2, "AnyValue")


_Request, _AnyValue = _wire_classes()

# --- AnyValue bytes -> Python -----------------------------------------------------------
#
# A hand-written reader for the canonical encoding every OTLP exporter writes: one
# oneof field per AnyValue, KeyValue as key then value. Anything else (unknown fields,
# other field orders, malformed bytes) raises _Irregular or IndexError and that
# AnyValue is read by upb instead, which also decides whether it is malformed.

# id(container) -> (container, buffer, offset of its AnyValue, offsets of its entries
# and of their end, the values decoded): so the bytes of whatever the masker left
# alone go back out as they came in.
_Containers = dict[int, tuple[Any, bytes, int, list[int], list[Any]]]
# id(attribute dict) -> (dict, how many KeyValues it came from, the values decoded)
_AttributeLists = dict[int, tuple[dict[str, Any], int, list[Any]]]
_DOUBLE = struct.Struct("<d")
_MASK64 = (1 << 64) - 1
_PLAIN = frozenset({"int_value", "double_value", "bool_value", "bytes_value"})


class _Irregular(Exception):
    pass


class _Unsupported(Exception):
    pass


@dataclass
class _Shadows:
    containers: _Containers
    attributes: _AttributeLists


def _varint_at(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise _Irregular


def _value(buf: bytes, i: int, end: int, shadows: _Containers) -> Any:
    """The AnyValue in buf[i:end] as a Python value."""
    if i == end:
        return None
    try:
        tag = buf[i]
        if tag == 0x21:  # double_value
            if end - i == 9:
                return _DOUBLE.unpack_from(buf, i + 1)[0]
        else:
            n = buf[i + 1]
            if n < 0x80:
                j = i + 2
            else:
                n, j = _varint_at(buf, i + 1)
            if tag == 0x18 or tag == 0x10:  # int_value, bool_value: n is the value
                if j == end:
                    if tag == 0x10:
                        return n != 0
                    n &= _MASK64
                    return n - (1 << 64) if n >> 63 else n
            elif j + n == end:  # one length-delimited field, exactly
                if tag == 0x0A:
                    return buf[j:end].decode()
                if tag == 0x32:
                    return _kvlist(buf, i, j, end, shadows)
                if tag == 0x2A:
                    return _array(buf, i, j, end, shadows)
                if tag == 0x3A:
                    return buf[j:end]
    except (_Irregular, IndexError):
        pass
    return _value_message(buf[i:end], shadows)


def _kvlist(buf: bytes, start: int, i: int, end: int, shadows: _Containers) -> dict[str, Any]:
    """The KeyValueList in buf[i:end] (its AnyValue starts at `start`) as a dict."""
    out: dict[str, Any] = {}
    bounds: list[int] = []
    mark = bounds.append
    while i < end:
        mark(i)
        if buf[i] != 0x0A:  # KeyValueList.values
            raise _Irregular
        n = buf[i + 1]
        if n < 0x80:
            i += 2
        else:
            n, i = _varint_at(buf, i + 1)
        stop = i + n
        if stop > end or i == stop or buf[i] != 0x0A:  # KeyValue.key first
            raise _Irregular
        n = buf[i + 1]
        if n < 0x80:
            i += 2
        else:
            n, i = _varint_at(buf, i + 1)
        key_end = i + n
        if key_end >= stop:
            if key_end > stop:
                raise _Irregular
            out[buf[i:key_end].decode()] = None  # no value
            i = stop
            continue
        if buf[key_end] != 0x12:  # then KeyValue.value
            raise _Irregular
        key = buf[i:key_end].decode()
        n = buf[key_end + 1]
        if n < 0x80:
            i = key_end + 2
        else:
            n, i = _varint_at(buf, key_end + 1)
        if i + n != stop:
            raise _Irregular
        if 2 <= n < 0x82 and buf[i] == 0x0A and buf[i + 1] == n - 2:  # a string, inline
            out[key] = buf[i + 2:stop].decode()
        else:
            out[key] = _value(buf, i, stop, shadows)
        i = stop
    mark(end)
    shadows[id(out)] = (out, buf, start, bounds, list(out.values()))
    return out


def _array(buf: bytes, start: int, i: int, end: int, shadows: _Containers) -> list[Any]:
    out: list[Any] = []
    bounds: list[int] = []
    while i < end:
        bounds.append(i)
        if buf[i] != 0x0A:  # ArrayValue.values
            raise _Irregular
        n = buf[i + 1]
        if n < 0x80:
            i += 2
        else:
            n, i = _varint_at(buf, i + 1)
        stop = i + n
        if stop > end:
            raise _Irregular
        out.append(_value(buf, i, stop, shadows))
        i = stop
    bounds.append(end)
    shadows[id(out)] = (out, buf, start, bounds, out[:])
    return out


def _value_message(raw: bytes, shadows: _Containers) -> Any:
    """An AnyValue the reader above does not take, read by upb (DecodeError if bad).

    Its containers get no shadow: they go back out re-encoded in canonical form.
    """
    value = _AnyValue.FromString(raw)
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value.decode()
    if which in _PLAIN:
        return getattr(value, which)
    if which == "kvlist_value":
        out: dict[str, Any] = {}
        for kv in value.kvlist_value.values:
            item = kv.value
            out[kv.key.decode()] = _value(item, 0, len(item), shadows)
        return out
    if which == "array_value":
        return [_value(item, 0, len(item), shadows) for item in value.array_value.values]
    if which is None:
        return None
    raise _Unsupported(which)


def _attributes(entries: Any, shadows: _Shadows) -> dict[str, Any]:
    """A repeated KeyValue field (attributes) as a dict."""
    containers = shadows.containers
    out: dict[str, Any] = {}
    for kv in entries:
        raw = kv.value
        out[kv.key.decode()] = _value(raw, 0, len(raw), containers)
    shadows.attributes[id(out)] = (out, len(entries), list(out.values()))
    return out


# --- Python -> AnyValue bytes -----------------------------------------------------------

_VARINTS = [bytes((n,)) if n < 0x80 else bytes((n & 0x7F | 0x80, n >> 7))
            for n in range(0x4000)]
_INT64 = range(-(1 << 63), 1 << 63)
_KEY_PREFIXES: dict[str, bytes] = {}
_KEY_PREFIX_CACHE = 10_000


def _varint(n: int) -> bytes:
    if n < 0x4000:
        return _VARINTS[n]
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key_prefix(key: str) -> bytes:
    """A KeyValue up to its value's length: the key field, then the value's tag."""
    prefix = _KEY_PREFIXES.get(key)
    if prefix is None:
        raw = key.encode()
        prefix = b"\x0a" + _varint(len(raw)) + raw + b"\x12"
        if len(_KEY_PREFIXES) >= _KEY_PREFIX_CACHE:  # keys come from input: bound it
            _KEY_PREFIXES.clear()
        _KEY_PREFIXES[key] = prefix
    return prefix


def _encode(value: Any, shadows: _Containers) -> bytes:
    """A Python value as a serialized AnyValue."""
    return _ENCODERS.get(type(value), _encode_other)(value, shadows)


def _update(value: Any, shadows: _Containers) -> bytes | None:
    """A decoded dict or list as a serialized AnyValue if the masker changed it, else None."""
    shadow = shadows.get(id(value))
    if shadow is None or shadow[0] is not value:
        return _encode(value, shadows)  # read by upb: always written anew
    if type(value) is dict:
        return _update_dict(value, shadow, shadows)
    return _update_list(value, shadow, shadows)


def _update_dict(value: dict[str, Any], shadow: Any, shadows: _Containers) -> bytes | None:
    _, buf, _, bounds, origs = shadow
    if len(bounds) - 1 != len(value):  # keys dropped (or duplicates collapsed)
        return _fresh_dict(value, shadows)
    varints = _VARINTS
    prefixes = _KEY_PREFIXES
    pieces: list[bytes] = []
    run = bounds[0]  # start of the entries kept as they came in
    for index, (key, cur) in enumerate(value.items()):
        t = type(cur)
        if cur is origs[index]:
            if t is not dict and t is not list:
                continue
            new = _update(cur, shadows)
            if new is None:
                continue
        elif t is str:  # what masking makes most: inlined _encode_str
            raw = cur.encode()
            new = b"\x0a" + (varints[len(raw)] if len(raw) < 0x4000 else _varint(len(raw))) + raw
        else:
            new = _encode(cur, shadows)
        at = bounds[index]
        if run < at:
            pieces.append(buf[run:at])
        kv = (prefixes.get(key) or _key_prefix(key)) + (
            varints[len(new)] if len(new) < 0x4000 else _varint(len(new))) + new
        pieces.append(b"\x0a" + (varints[len(kv)] if len(kv) < 0x4000 else _varint(len(kv))) + kv)
        run = bounds[index + 1]
    if not pieces:
        return None
    if run < bounds[-1]:
        pieces.append(buf[run:bounds[-1]])
    body = b"".join(pieces)
    return b"\x32" + _varint(len(body)) + body


def _update_list(value: list[Any], shadow: Any, shadows: _Containers) -> bytes | None:
    _, buf, _, bounds, origs = shadow
    if len(bounds) - 1 != len(value):
        return _fresh_list(value, shadows)
    pieces: list[bytes] = []
    run = bounds[0]
    for index, cur in enumerate(value):
        if cur is origs[index]:
            t = type(cur)
            if t is not dict and t is not list:
                continue
            new = _update(cur, shadows)
            if new is None:
                continue
        else:
            new = _encode(cur, shadows)
        at = bounds[index]
        if run < at:
            pieces.append(buf[run:at])
        pieces.append(b"\x0a" + _varint(len(new)) + new)
        run = bounds[index + 1]
    if not pieces:
        return None
    if run < bounds[-1]:
        pieces.append(buf[run:bounds[-1]])
    body = b"".join(pieces)
    return b"\x2a" + _varint(len(body)) + body


def _fresh_dict(value: dict[str, Any], shadows: _Containers) -> bytes:
    pieces = []
    for key, item in value.items():
        new = _encode(item, shadows)
        kv = _key_prefix(key) + _varint(len(new)) + new
        pieces.append(b"\x0a" + _varint(len(kv)) + kv)
    body = b"".join(pieces)
    return b"\x32" + _varint(len(body)) + body


def _fresh_list(value: list[Any], shadows: _Containers) -> bytes:
    pieces = []
    for item in value:
        new = _encode(item, shadows)
        pieces.append(b"\x0a" + _varint(len(new)) + new)
    body = b"".join(pieces)
    return b"\x2a" + _varint(len(body)) + body


def _encode_container(value: Any, shadows: _Containers) -> bytes:
    shadow = shadows.get(id(value))
    if shadow is None or shadow[0] is not value:
        return _fresh_dict(value, shadows) if type(value) is dict else _fresh_list(value, shadows)
    new = _update(value, shadows)
    return shadow[1][shadow[2]:shadow[3][-1]] if new is None else new


def _encode_str(value: str, shadows: _Containers) -> bytes:
    raw = value.encode()
    return b"\x0a" + _varint(len(raw)) + raw


def _encode_int(value: int, shadows: _Containers) -> bytes:
    if value not in _INT64:
        return _encode_str(str(value), shadows)
    return b"\x18" + _varint(value & _MASK64)


def _encode_float(value: float, shadows: _Containers) -> bytes:
    return b"\x21" + _DOUBLE.pack(value)


def _encode_bool(value: bool, shadows: _Containers) -> bytes:
    return b"\x10\x01" if value else b"\x10\x00"


def _encode_bytes(value: bytes, shadows: _Containers) -> bytes:
    return b"\x3a" + _varint(len(value)) + value


def _encode_none(value: None, shadows: _Containers) -> bytes:
    return b""


def _encode_other(value: Any, shadows: _Containers) -> bytes:
    # No operator returns another type; a subclass goes as what it derives from.
    for kind, encoder in _ENCODERS.items():
        if isinstance(value, kind):
            return encoder(value, shadows)
    return _encode_str(str(value), shadows)


_ENCODERS: dict[type, Callable[[Any, _Containers], bytes]] = {
    str: _encode_str,
    dict: _encode_container,
    int: _encode_int,
    float: _encode_float,
    bool: _encode_bool,
    list: _encode_container,
    bytes: _encode_bytes,
    type(None): _encode_none,
}


def _write_attributes(entries: Any, value: dict[str, Any], shadows: _Shadows) -> None:
    """Put a masked attribute dict back into its repeated KeyValue field."""
    containers = shadows.containers
    shadow = shadows.attributes.get(id(value))
    if shadow is not None and shadow[0] is value and shadow[1] == len(value):
        for entry, cur, orig in zip(entries, value.values(), shadow[2], strict=True):
            if cur is orig:
                t = type(cur)
                if t is not dict and t is not list:
                    continue
                new = _update(cur, containers)
                if new is None:
                    continue
            else:
                new = _encode(cur, containers)
            entry.value = new
        return
    del entries[:]
    for key, item in value.items():
        entries.add(key=key.encode(), value=_encode(item, containers))


def _text(value: Any) -> str:
    """A scope's name or version after masking: a string field on the wire."""
    if type(value) is str:
        return value
    return "" if value is None else str(value)


# --- the request ------------------------------------------------------------------------


def _record_document(record: Any, shadows: _Shadows) -> Document:
    attributes = record.attributes
    doc: Document = {"attributes": _attributes(attributes, shadows) if attributes else {}}
    if record.HasField("body"):
        raw = record.body
        body = _value(raw, 0, len(raw), shadows.containers)
        if body is not None:
            doc["body"] = body
    return doc


def _resource_document(resource: Any, shadows: _Shadows) -> Document:
    return {"resource": _attributes(resource.attributes, shadows)}


def _scope_document(scope: Any, shadows: _Shadows) -> Document:
    return {"scope": {
        "scope_name": scope.name,
        "scope_version": scope.version,
        "attributes": _attributes(scope.attributes, shadows),
    }}


def _document(build: Callable[[Any, _Shadows], Document], message: Any,
              shadows: _Shadows) -> Document | Rejection:
    try:
        return build(message, shadows)
    except UnicodeDecodeError:
        return Rejection("invalid_utf8")
    except _Unsupported:
        return Rejection("unsupported_value")
    except RecursionError:
        return Rejection("too_deep")


def _write_record(record: Any, doc: Document, shadows: _Shadows) -> None:
    attributes = doc["attributes"]
    if attributes or record.attributes:
        _write_attributes(record.attributes, attributes, shadows)
    if "body" in doc:
        body = doc["body"]
        t = type(body)
        if t is dict or t is list:
            new = _update(body, shadows.containers)
            if new is not None:
                record.body = new
        else:
            new = _encode(body, shadows.containers)
            if new != record.body:
                record.body = new


def _write_scope(scope: Any, doc: dict[str, Any], shadows: _Shadows) -> None:
    name, version = doc.get("scope_name"), doc.get("scope_version")
    if name != scope.name:
        scope.name = _text(name)
    if version != scope.version:
        scope.version = _text(version)
    attributes = doc.get("attributes")
    if type(attributes) is dict:
        _write_attributes(scope.attributes, attributes, shadows)
    else:
        del scope.attributes[:]


def transform_export(masker: Masker, data: bytes, limits: Limits) -> OtlpResult:
    """Mask one serialized ExportLogsServiceRequest; raise RequestError for a bad one."""
    request = _Request()
    try:
        request.ParseFromString(data)
    except DecodeError:
        raise RequestError(
            "INVALID_ARGUMENT", "request is not a valid ExportLogsServiceRequest"
        ) from None
    resource_logs = request.resource_logs
    count = sum(len(sl.log_records) for rl in resource_logs for sl in rl.scope_logs)
    if count > limits.max_batch_records:
        raise RequestError(
            "RESOURCE_EXHAUSTED",
            f"log_records: {count} exceed the limit of {limits.max_batch_records} a request",
        )
    if not count:
        return OtlpResult(b"", 0, [])
    try:
        return _transform(masker, request, count)
    except DecodeError:  # a nested AnyValue that is not one
        raise RequestError(
            "INVALID_ARGUMENT", "request is not a valid ExportLogsServiceRequest"
        ) from None


def _transform(masker: Masker, request: Any, count: int) -> OtlpResult:
    shadows = _Shadows({}, {})
    # Documents in request order: [resource], then per scope [scope] and its records.
    # `shared`: the index of each resource and scope document, -1 for none;
    # `starts`: the index of each scope's first record.
    docs: list[Document | Rejection] = []
    shared: list[int] = []
    starts: list[int] = []
    for rl in request.resource_logs:
        resource = rl.resource
        if resource.attributes:
            shared.append(len(docs))
            docs.append(_document(_resource_document, resource, shadows))
        else:
            shared.append(-1)
        for sl in rl.scope_logs:
            scope = sl.scope
            if scope.name or scope.version or scope.attributes:
                shared.append(len(docs))
                docs.append(_document(_scope_document, scope, shadows))
            else:
                shared.append(-1)
            starts.append(len(docs))
            docs.extend([_document(_record_document, r, shadows) for r in sl.log_records])

    outcomes = masker.mask_batch(docs)
    next_shared = iter(shared).__next__
    next_start = iter(starts).__next__

    def shared_outcome(write: Callable[[Any, Any, _Shadows], None], target: Any,
                       root: str) -> Rejection | None:
        """The outcome of the next resource or scope document; put it back if masked."""
        at = next_shared()
        if at < 0:
            return None
        outcome = outcomes[at]
        if outcome is None:
            doc = docs[at]
            assert isinstance(doc, dict)
            write(target, doc[root], shadows)
        return outcome

    rejections: list[tuple[int, Rejection]] = []
    accepted = flat = 0
    resource_logs = request.resource_logs
    dead_resources: list[int] = []
    for rl_index, rl in enumerate(resource_logs):
        rl_outcome = shared_outcome(_write_attributes, rl.resource.attributes, "resource")
        scope_logs = rl.scope_logs
        dead_scopes: list[int] = []
        for sl_index, sl in enumerate(scope_logs):
            sl_outcome = shared_outcome(_write_scope, sl.scope, "scope")
            outcome = rl_outcome if rl_outcome is not None else sl_outcome
            records = sl.log_records
            n = len(records)
            start = next_start()
            if outcome is not None:
                rejections.extend([(i, outcome) for i in range(flat, flat + n)])
                alive = 0
            else:
                dead: list[int] = []
                for index, record in enumerate(records):
                    result = outcomes[start + index]
                    if result is None:
                        doc = docs[start + index]
                        assert isinstance(doc, dict)
                        _write_record(record, doc, shadows)
                    else:
                        rejections.append((flat + index, result))
                        dead.append(index)
                alive = n - len(dead)
                if alive:
                    for index in reversed(dead):
                        del records[index]
            accepted += alive
            flat += n
            if not alive:
                dead_scopes.append(sl_index)
        for index in reversed(dead_scopes):
            del scope_logs[index]
        if not scope_logs:
            dead_resources.append(rl_index)
    assert flat == count
    if not accepted:
        return OtlpResult(b"", 0, rejections)
    for index in reversed(dead_resources):
        del resource_logs[index]
    return OtlpResult(request.SerializeToString(), accepted, rejections)


def partial_success_message(rejections: Iterable[tuple[int, Rejection]]) -> str:
    """`3 log records rejected: operator_error x2 (rule patient.dob), invalid_utf8 x1`.

    Reason codes and rule ids only, most frequent first: never a value. "" for none.
    """
    counts = Counter(rejection for _, rejection in rejections)
    total = sum(counts.values())
    if not total:
        return ""
    parts = [
        f"{r.reason} x{n}" + (f" (rule {r.rule})" if r.rule else "")
        for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].reason, kv[0].rule))
    ]
    noun = "log record" if total == 1 else "log records"
    return f"{total} {noun} rejected: " + ", ".join(parts)
